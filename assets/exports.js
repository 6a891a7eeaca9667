/* 我的导出: a finished export is fetched once by itself (dashboard/my_exports.py marks its
   link data-auto until the server has sent it), so the file arrives even when the user moved
   to another view while it was written. Only links of the list are followed, each once. */
(function () {
    var followed = {};
    function follow() {
        var links = document.querySelectorAll("#my-exports a.export-ready[data-auto='1']");
        Array.prototype.forEach.call(links, function (link) {
            var href = link.getAttribute("href") || "";
            if (followed[href] || href.indexOf("/exports/") !== 0) { return; }
            followed[href] = true;
            link.click();
        });
    }
    new MutationObserver(follow).observe(document.documentElement,
                                         {childList: true, subtree: true});
})();

/* The export buttons' click goes into the shell's store at once (dashboard/my_exports.py):
   a server callback on the buttons themselves would be dropped when the page changes. */
window.dash_clientside = Object.assign({}, window.dash_clientside, {
    gridgovExports: {
        request: function (_xlsx, _csv, query) {
            var kinds = {"exp-xlsx": "cases.xlsx", "exp-csv": "cases.csv"};
            var fired = (window.dash_clientside.callback_context.triggered || [])[0];
            var id = fired ? String(fired.prop_id).split(".")[0] : "";
            if (!kinds[id] || !fired.value) { return window.dash_clientside.no_update; }
            return {kind: kinds[id], query: query, at: Date.now()};
        },
        /* A button is disabled while the same export of the same view runs (the list of
           running exports comes from the server, dashboard/my_exports.py), or with no unit. */
        buttons: function (running, query) {
            var q = query || {};
            if (!q.scope) { return [true, true]; }
            var keys = (Array.isArray(running) ? running : []).map(function (key) {
                return JSON.stringify(key);
            });
            return ["cases.xlsx", "cases.csv"].map(function (kind) {
                return keys.indexOf(JSON.stringify([q.page, kind, q.search])) >= 0;
            });
        }
    }
});
