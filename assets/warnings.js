/* Leaflet callbacks of the 预警 map (referenced from Python as {"variable": "gridgovWarn.x"}).
   Colours come precomputed in each feature's properties; tooltips are text nodes built by
   window.gridgov.textTip (assets/gridgov.js), never HTML strings from data. */
window.gridgovWarn = Object.assign({}, window.gridgovWarn, {
    hotStyle: function (feature) {
        var p = feature.properties || {};
        return {fillColor: p.fill || "#fdae61", color: "#7f0000", weight: 1, fillOpacity: 0.6};
    },
    hotTooltip: function (feature, layer) {
        var p = feature.properties || {};
        if (p.tooltip) {
            layer.bindTooltip(window.gridgov.textTip(p.tooltip), {sticky: true});
        }
    },
    point: function (feature, latlng) {
        var p = feature.properties || {};
        var marker = p.radius_m ?
            L.circle(latlng, {radius: p.radius_m, color: p.colour || "#b2182b", weight: 2,
                              fillColor: p.colour || "#b2182b", fillOpacity: 0.2}) :
            L.circleMarker(latlng, {radius: 7, color: "#fff", weight: 1.5,
                                    fillColor: p.colour || "#b2182b", fillOpacity: 0.95});
        if (p.tooltip) { marker.bindTooltip(window.gridgov.textTip(p.tooltip)); }
        return marker;
    }
});
