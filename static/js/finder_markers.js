// The finder map's markers (static/js/finder.js builds the rest of the page): a marker per location with its power
// and whether it is free, the server's grid counts where the visible area holds more locations than it sends, and the
// clusters Leaflet.markercluster draws over both. Each is a keyboard button: Enter or Space opens the location's
// panel, zooms into a cell, or spreads out a cluster the map cannot zoom into further.
(function () {
  "use strict";

  function escapeHtml(text) {
    return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
  }

  // L: Leaflet; map: the page's map; words: the page's translated strings; openPanel(url, opener): the details panel.
  function create(L, map, words, openPanel) {
    // Markers and the server's grid counts (cells) cluster together: a cell weighs its count, so overlapping
    // cells merge into one bubble with the sum, and every bubble names its count for screen readers.
    function countIcon(count) {
      const size = count < 10 ? "small" : count < 100 ? "medium" : "large";
      const label = words.cluster.replace("{count}", String(count));
      return L.divIcon({
        className: "marker-cluster marker-cluster-" + size,
        html: '<div><span aria-hidden="true">' + count + '</span><span class="visually-hidden">' + escapeHtml(label) + "</span></div>",
        iconSize: [40, 40],
      });
    }
    const cluster = L.markerClusterGroup({
      showCoverageOnHover: false,
      chunkedLoading: true,
      maxClusterRadius: 45,
      iconCreateFunction: (group) =>
        countIcon(group.getAllChildMarkers().reduce((sum, marker) => sum + (marker.options.count || 1), 0)),
    });
    cluster.addTo(map);

    // Leaflet makes markers focusable buttons but leaves Enter and Space to us (it fires "keypress" on the layer).
    function isActivateKey(event) {
      return event.key === "Enter" || event.key === " ";
    }

    function onActivateKey(layer, action) {
      layer.on("keypress", (event) => {
        if (isActivateKey(event.originalEvent)) {
          event.originalEvent.preventDefault();
          action();
        }
      });
    }

    // A cluster of markers, by keyboard: zoom in on it (spread it out where the map cannot zoom further).
    cluster.on("clusterkeypress", (event) => {
      if (!isActivateKey(event.originalEvent)) {
        return;
      }
      event.originalEvent.preventDefault();
      if (map.getZoom() >= map.getMaxZoom()) {
        event.layer.spiderfy();
      } else {
        event.layer.zoomToBounds({ padding: [30, 30] });
      }
    });

    function markerFor(item) {
      const kind = item.dc ? "dc" : "ac";
      const state = item.available ? "" : " finder-marker--busy";
      const icon = L.divIcon({
        className: "finder-marker finder-marker--" + kind + state,
        html: '<span aria-hidden="true">' + escapeHtml(item.kw || "") + '</span><span class="visually-hidden">' + escapeHtml(item.label) + "</span>",
        iconSize: [32, 32],
        iconAnchor: [16, 16],
      });
      const marker = L.marker([item.lat, item.lon], { icon: icon, keyboard: true, title: item.label, riseOnHover: true });
      const open = () => openPanel(item.panel, marker.getElement());
      marker.on("click", open);
      onActivateKey(marker, open);
      return marker;
    }

    function cellFor(cell) {
      const label = words.cluster.replace("{count}", String(cell.count));
      const marker = L.marker([cell.lat, cell.lon], { icon: countIcon(cell.count), keyboard: true, title: label, count: cell.count });
      const zoomIn = () => {
        const [south, west, north, east] = cell.bounds;
        if (north - south < 1e-4 && east - west < 1e-4) {
          map.setView([cell.lat, cell.lon], Math.min(map.getZoom() + 3, 18));
        } else {
          map.fitBounds([[south, west], [north, east]], { padding: [30, 30] });
        }
      };
      marker.on("click", zoomIn);
      onActivateKey(marker, zoomIn);
      return marker;
    }

    return { cluster: cluster, markerFor: markerFor, cellFor: cellFor };
  }

  window.FinderMarkers = { create: create, escapeHtml: escapeHtml };
})();
