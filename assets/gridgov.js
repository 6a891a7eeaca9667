/* Leaflet callbacks for the gridgov map (referenced from Python as {"variable": "gridgov.x"}).
   Colours come precomputed in each feature's properties, so the browser only draws.
   Everything that came from data (names, case ids, categories) is shown as text: tooltips get
   a DOM element whose textContent is set, never an HTML string. Every GeoJSON layer has its own
   onEachFeature, because dash-leaflet's default one binds properties.tooltip and
   properties.popup as HTML; the text of a tooltip travels as properties.tip. */
window.gridgov = Object.assign({}, window.gridgov, {
    /* Navigate inside the Dash app (dcc.Location follows), keeping the back button working. */
    go: function (href) {
        window.history.pushState({}, "", href);
        window.dispatchEvent(new CustomEvent("_dashprivate_pushstate"));
        window.scrollTo(0, 0);
    },
    textTip: function (text) {
        var node = document.createElement("div");
        node.className = "tip-text";
        node.textContent = text === null || text === undefined ? "" : String(text);
        return node;
    },
    unitStyle: function (feature) {
        var p = feature.properties || {};
        return {
            fillColor: p.fill || "#d9d9d9",  // layers.style.map_features sets fill
            color: "#4a5560",
            weight: 1,
            fillOpacity: p.fillOpacity === undefined ? 0.75 : p.fillOpacity,
            dashArray: p.geometry_source === "generated" ? "4 3" : null
        };
    },
    hoverStyle: function () {
        return {weight: 3, color: "#111", fillOpacity: 0.85};
    },
    /* Open a unit of the map in the same view (the server checks the scope when it renders). */
    enter: function (code) {
        var query = new URLSearchParams(window.location.search);
        query.set("unit", String(code));
        window.gridgov.go(window.location.pathname + "?" + query.toString());
    },
    /* A hover shows the unit's numbers; a click or a tap opens them in a popup with 进入,
       instead of leaving the view at once (a finger cannot hover, and a mistaken tap should
       not drill down). The popup is built of text nodes and one button. */
    unitTooltip: function (feature, layer) {
        var p = feature.properties || {};
        var text = p.label || p.tip || p.name;
        if (text) {
            layer.bindTooltip(window.gridgov.textTip(text),
                              {sticky: true, direction: "top", className: "unit-tip"});
        }
        layer.on("click", function (event) {
            var node = document.createElement("div");
            node.className = "unit-popup";
            node.appendChild(window.gridgov.textTip(text || ""));
            var here = new URLSearchParams(window.location.search).get("unit");
            if (p.code && String(p.code) !== here) {
                var button = document.createElement("button");
                button.type = "button";
                button.className = "btn btn-enter";
                button.textContent = "进入";
                button.addEventListener("click", function () {
                    layer.closePopup();
                    window.gridgov.enter(p.code);
                });
                node.appendChild(button);
            }
            layer.closeTooltip();
            L.popup({className: "unit-popup-wrap", maxWidth: 280})
                .setLatLng(event.latlng).setContent(node).openOn(layer._map);
        });
    },
    stationPoint: function (feature, latlng) {
        var p = feature.properties || {};
        var m = L.circleMarker(latlng, {  /* a dark ring: never taken for a case point */
            radius: 7, color: "#111", weight: 2.5, fillColor: p.colour || "#333", fillOpacity: 1,
            className: "station-point"
        });
        return m;
    },
    /* onEachFeature of point layers: the tip as text (and nothing bound as HTML) */
    pointTooltip: function (feature, layer) {
        var p = feature.properties || {};
        if (p.tip) { layer.bindTooltip(window.gridgov.textTip(p.tip)); }
    },
    /* a unit's name inside it (districts, streets): a text node in a divIcon, never HTML */
    unitLabel: function (feature, latlng) {
        var p = feature.properties || {};
        var node = document.createElement("span");
        node.className = "unit-label-text";
        node.textContent = p.name === null || p.name === undefined ? "" : String(p.name);
        return L.marker(latlng, {
            icon: L.divIcon({html: node, className: "unit-label", iconSize: null}),
            interactive: false, keyboard: false
        });
    },
    /* onEachFeature of layers that show no tooltip */
    noTooltip: function () {},
    catchment: function (feature, latlng) {
        var p = feature.properties || {};
        return L.circle(latlng, {
            radius: p.radius_m || 500, color: p.colour || "#333", weight: 1,
            fillColor: p.colour || "#333", fillOpacity: 0.08, interactive: false
        });
    },
    uncoveredStyle: function () {
        return {color: "#b2182b", weight: 1, fillColor: "#b2182b", fillOpacity: 0.35,
                dashArray: "2 2"};
    },
    casePoint: function (feature, latlng) {
        var p = feature.properties || {};
        var cell = typeof p.count === "number";
        var m = L.circleMarker(latlng, {
            radius: cell ? Math.min(22, 4 + 2 * Math.sqrt(p.count)) : 6,
            color: "#fff", weight: cell ? 1 : 1.5, fillColor: p.colour || "#0571b0",
            fillOpacity: cell ? 0.75 : 0.95, className: cell ? "case-cell" : "case-point"
        });
        if (p.href && p.href.indexOf("/case/") === 0) {
            m.on("click", function () { window.gridgov.go(p.href); });
        }
        return m;
    }
});
