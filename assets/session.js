/* When the session has ended (logout elsewhere, idle timeout, account disabled), the server
   answers callbacks with 401: go to the login page instead of leaving a page that no longer
   updates. Only the status is read; nothing from the response is put into the page. */
(function () {
    if (!window.fetch) { return; }
    var original = window.fetch.bind(window);
    window.fetch = function (resource, init) {
        return original(resource, init).then(function (response) {
            var url = typeof resource === "string" ? resource : (resource && resource.url) || "";
            if (response.status === 401 && url.indexOf("/_dash-") !== -1) {
                var here = window.location.pathname + window.location.search;
                window.location.assign("/login?next=" + encodeURIComponent(here));
            }
            return response;
        });
    };
})();
