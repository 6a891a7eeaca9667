/* AG Grid cell renderers for gridgov (dash-ag-grid looks them up by name here).
   Data is rendered as text: React escapes the child string, the href is URL-encoded. */
var dagcomponentfuncs = (window.dashAgGridComponentFunctions =
    window.dashAgGridComponentFunctions || {});

dagcomponentfuncs.CaseLink = function (props) {
    var id = props.value === null || props.value === undefined ? "" : String(props.value);
    var href = "/case/" + encodeURIComponent(id);
    return React.createElement("a", {
        href: href,
        className: "case-link",
        onClick: function (event) {
            if (event.ctrlKey || event.metaKey || event.shiftKey) { return; }
            event.preventDefault();
            window.gridgov.go(href);
        }
    }, id);
};
