/* On a phone (narrower than 600 px) every view opens with its filter panel and map legends
   folded, so the first screen shows the numbers, not the controls. Each panel is folded once,
   when it appears; a user who opens it keeps it open until the view is rendered again. */
(function () {
    var PHONE = "(max-width: 600px)";
    function fold() {
        if (!window.matchMedia || !window.matchMedia(PHONE).matches) { return; }
        var panels = document.querySelectorAll("details.filters[open], details.map-legend[open]");
        Array.prototype.forEach.call(panels, function (panel) {
            if (panel.dataset.folded) { return; }
            panel.dataset.folded = "1";
            panel.open = false;
        });
    }
    new MutationObserver(fold).observe(document.documentElement,
                                       {childList: true, subtree: true});
})();

/* One finger over a map scrolls the page; two fingers move and zoom the map. Leaflet takes
   a one-finger touch for a drag and cancels the scroll, so a single touch on a map does not
   reach Leaflet (a tap still clicks: that is a separate event); a second finger does, and
   Leaflet's pinch moves and zooms the map. The map's touch-action (style.css) leaves the
   vertical pan to the browser. */
(function () {
    function oneFingerOnMap(event) {
        var target = event.target;
        if (!target || !target.closest || !target.closest(".leaflet-container")) { return; }
        if (event.touches && event.touches.length === 1) { event.stopPropagation(); }
    }
    ["touchstart", "touchmove"].forEach(function (type) {
        window.addEventListener(type, oneFingerOnMap, {capture: true, passive: true});
    });
})();
