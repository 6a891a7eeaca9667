/* Leaflet callbacks for the gridgov map (referenced from Python as {"variable": "gridgov.x"}).
   Colours come precomputed in each feature's properties, so the browser only draws. */
window.gridgov = Object.assign({}, window.gridgov, {
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
    unitTooltip: function (feature, layer) {
        var p = feature.properties || {};
        var text = p.label || p.tooltip || p.name;
        if (text) {
            layer.bindTooltip(text, {sticky: true, direction: "top", className: "unit-tip"});
        }
    },
    stationPoint: function (feature, latlng) {
        var p = feature.properties || {};
        var m = L.circleMarker(latlng, {
            radius: 6, color: "#fff", weight: 1.5, fillColor: p.colour || "#333", fillOpacity: 1
        });
        if (p.label) { m.bindTooltip(p.label); }
        return m;
    },
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
        var m = L.circleMarker(latlng, {
            radius: 5, color: "#fff", weight: 1, fillColor: p.colour || "#2b83ba", fillOpacity: 0.95
        });
        if (p.tooltip) { m.bindTooltip(p.tooltip); }
        return m;
    }
});
