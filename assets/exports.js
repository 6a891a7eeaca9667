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
