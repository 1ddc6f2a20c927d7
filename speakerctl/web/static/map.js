// The cluster map, drawn without tiles: commune outlines (convex hulls of their clusters, from the
// server) and one marker per cluster coloured by its state; live patches of the cluster list recolour them.
"use strict";
(function () {
  const data = JSON.parse(document.getElementById("map-data").textContent);
  const colours = { online: "#137333", offline: "#9aa0a6", fault: "#e37400", playing: "#1a73e8" };
  const map = L.map("map", { zoomSnap: 0.25, attributionControl: false });
  // The view is set before any layer is added: Leaflet draws vectors only on a map that has one.
  const corners = data.places.flatMap((p) => p.outline).concat(data.clusters.map((c) => [c.lat, c.lon]));
  if (corners.length) map.fitBounds(L.latLngBounds(corners).pad(0.05)); else map.setView([10.0, 105.8], 9);
  const outlines = L.featureGroup().addTo(map);
  for (const place of data.places) {
    L.polygon(place.outline, { color: "#5f6368", weight: 1, fillColor: "#dfe6ee", fillOpacity: 0.6 })
      .bindTooltip(place.name, { sticky: true }).addTo(outlines);
  }
  const markers = {};
  for (const c of data.clusters) {
    const link = Object.assign(document.createElement("a"),
      { href: "/devices/" + encodeURIComponent(c.id), textContent: c.name });
    markers[c.id] = L.circleMarker([c.lat, c.lon], { radius: 7, weight: 1, color: "#fff", fillOpacity: 0.95,
      fillColor: colours[c.state] || "#9aa0a6" }).bindPopup(link).addTo(map);
  }
  document.addEventListener("console:patched", (e) => {
    const el = e.detail;
    if (!el.classList.contains("device")) return;
    const m = markers[el.id.slice(4)];
    if (m) m.setStyle({ fillColor: colours[el.dataset.state] || "#9aa0a6" });
  });
  window.consoleMap = { markers };
})();
