/* The page's controls write the new query string into the page's own store (view-nav,
   dashboard/shell.py); this copies it into the URL, whose change renders the view. In the
   browser, so that a page arriving does not cost a server request per control. */
window.dash_clientside = Object.assign({}, window.dash_clientside, {
    gridgovNav: {
        go: function (search) {
            return typeof search === "string" ? search : window.dash_clientside.no_update;
        }
    }
});
