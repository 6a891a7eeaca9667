/* The standalone map (a downloaded gridgov map opened from disk, without a server).
   Everything it shows comes from the JSON block #gridgov-map-data and is rendered as text:
   tooltips, the legend and the title are DOM text nodes, never HTML, and no value is
   ever evaluated. Leaflet is inlined beside this script; the page fetches nothing unless the
   user switches the OpenStreetMap layer on. */
(function () {
    "use strict";
    var data = JSON.parse(document.getElementById("gridgov-map-data").textContent);

    function el(tag, className, text) {
        var node = document.createElement(tag);
        if (className) { node.className = className; }
        if (text !== undefined && text !== null) { node.textContent = String(text); }
        return node;
    }
    function tip(text) { return el("div", "tip-text", text === undefined ? "" : text); }
    function escapeHtml(text) {  /* for Leaflet's layer control, which sets innerHTML */
        return String(text).replace(/[&<>"']/g, function (c) {
            return {"&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;", "'": "&#39;"}[c];
        });
    }
    function colour(value, fallback) {
        return typeof value === "string" && /^#[0-9a-fA-F]{3,8}$/.test(value) ? value : fallback;
    }

    document.title = data.title || "地图";
    var map = L.map("map", {zoomControl: true});
    L.control.scale({imperial: false, position: "bottomright"}).addTo(map);  /* metres */
    var osm = L.tileLayer("https://tile.openstreetmap.org/{z}/{x}/{y}.png", {
        attribution: "© OpenStreetMap contributors", maxZoom: 19
    });
    var units = L.geoJSON(data.units, {
        style: function (feature) {
            var p = feature.properties || {};
            return {
                fillColor: colour(p.fill, "#d9d9d9"), color: "#4a5560", weight: 1,
                fillOpacity: typeof p.fillOpacity === "number" ? p.fillOpacity : 0.75,
                dashArray: p.geometry_source === "generated" ? "4 3" : null
            };
        },
        onEachFeature: function (feature, layer) {
            var p = feature.properties || {};
            var text = p.label || p.tip || p.name;
            if (text) { layer.bindTooltip(tip(text), {sticky: true, direction: "top"}); }
            layer.on("mouseover", function () { layer.setStyle({weight: 3, color: "#222"}); });
            layer.on("mouseout", function () { units.resetStyle(layer); });
        }
    }).addTo(map);
    var overlays = {};
    overlays[escapeHtml(data.metric_label || "")] = units;
    if (data.stations && data.stations.features && data.stations.features.length) {
        var stations = L.geoJSON(data.stations, {
            pointToLayer: function (feature, latlng) {
                var p = feature.properties || {};
                var marker = L.circleMarker(latlng, {
                    radius: 5, color: colour(p.colour, "#444"), fillColor: colour(p.colour, "#444"),
                    fill: true, fillOpacity: 0.9, weight: 1.5, className: "station-point"
                });
                if (p.tip) { marker.bindTooltip(tip(p.tip)); }
                return marker;
            }
        }).addTo(map);
        overlays[escapeHtml("服务站点")] = stations;
    }
    var bases = {};
    bases[escapeHtml("无底图")] = L.layerGroup().addTo(map);
    bases[escapeHtml("OpenStreetMap（需联网）")] = osm;
    L.control.layers(bases, overlays, {collapsed: false}).addTo(map);
    if (data.bounds) { map.fitBounds(data.bounds); }

    var legend = document.getElementById("legend");
    legend.appendChild(el("b", "legend-title", data.title || data.scope_name || ""));
    legend.appendChild(el("div", "legend-metric", data.metric_label || ""));
    (data.legend || []).forEach(function (entry) {
        var row = el("div", "legend-row");
        var swatch = el("span", "swatch");
        swatch.style.background = colour(entry[0], "#d9d9d9");
        row.appendChild(swatch);
        row.appendChild(el("span", null, entry[1]));
        legend.appendChild(row);
    });
    (data.notes || []).forEach(function (line) {  /* scope, filters, data date: as text */
        legend.appendChild(el("div", "legend-note legend-fact", line));
    });
    legend.appendChild(el("div", "legend-note", "未落格案件 " + (data.unassigned || 0) + " 件"));
    legend.appendChild(el("div", "legend-note", "虚线边界为示意边界"));
})();
