/* Printing a view prints every row: before printing, each AG Grid is switched to its print
   layout (every row in the page flow, no paging, no fixed height); afterwards it goes back.
   The print stylesheet (style.css, @media print) hides the controls. */
(function () {
    var saved = [];
    function grids() {
        var api = window.dash_ag_grid && window.dash_ag_grid.getApi;
        if (!api) { return []; }
        return Array.prototype.map.call(document.querySelectorAll(".ag-theme-quartz[id]"),
            function (node) {
                try { return {node: node, api: api(node.id)}; } catch (e) { return null; }
            }).filter(function (g) { return g && g.api; });
    }
    window.addEventListener("beforeprint", function () {
        saved = grids().map(function (g) {
            var state = {g: g, height: g.node.style.height,
                         pagination: g.api.getGridOption("pagination")};
            g.node.style.height = "auto";
            g.api.setGridOption("pagination", false);
            g.api.setGridOption("domLayout", "print");
            return state;
        });
    });
    window.addEventListener("afterprint", function () {
        saved.forEach(function (s) {
            s.g.api.setGridOption("domLayout", "normal");
            s.g.api.setGridOption("pagination", s.pagination);
            s.g.node.style.height = s.height;
        });
        saved = [];
    });
})();
