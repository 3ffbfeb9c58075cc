// The charger finder's map page (templates/finder/map.html). Without this script the page is a search form and a
// server-rendered list; with it, a Leaflet map whose markers come from /map/markers for the visible area only
// (the server bounds them; clusters are drawn here), a list that follows the map (/map/results, nearest or cheapest
// first) and a details panel (/map/locations/.../panel). Along a route (settings.route: a shared polyline, or the
// straight line between two typed places, resolved by the server on a normal form submission) the route is drawn
// and the list stays the route's, in its order, re-asked when the filters or the corridor change. Words come
// translated from the page's JSON settings block; no inline script.
(function () {
  "use strict";

  const settingsElement = document.getElementById("finder-settings");
  if (!settingsElement) {
    return;
  }
  const settings = JSON.parse(settingsElement.textContent);
  const words = settings.strings;
  const root = document.getElementById("finder");
  const form = document.getElementById("finder-form");
  const statusBox = document.getElementById("finder-status");
  const results = document.getElementById("finder-results");
  const panel = document.getElementById("finder-panel");
  const panelBody = document.getElementById("finder-panel-body");
  const closeButton = document.getElementById("finder-close");
  const hint = document.getElementById("finder-hint");
  const notice = document.getElementById("finder-notice");
  const locateButton = document.getElementById("finder-locate");
  const mapElement = document.getElementById("finder-map");
  const sortSelect = document.getElementById("finder-sort");
  const sortControl = document.getElementById("finder-sort-control");
  const orderNote = document.getElementById("finder-order");
  const initialParams = new URLSearchParams(window.location.search);
  // Fields of the form that are not filters: the searches read them, the marker and list requests do not.
  const SEARCH_FIELDS = new Set(["q", "mode", "from", "to", "corridor_km", "polyline", "sort"]);

  // The route searched along (drawn on the map; the list follows it, not the map), or null.
  let route = settings.route;
  let routeLayer = null;

  // The point distances are measured from: the searched place or the driver's position (none while browsing).
  let origin = settings.start ? { lat: settings.start.lat, lon: settings.start.lon } : null;
  let opener = null; // what opened the panel: focus goes back there when it closes
  const pending = {}; // the request in flight per kind, aborted when a newer one starts
  let busy = 0; // requests in flight or about to start: aria-busy on the page's root while any is

  function working(delta) {
    busy = Math.max(0, busy + delta);
    root.setAttribute("aria-busy", busy > 0 ? "true" : "false");
  }
  working(0);

  function say(text, kind) {
    statusBox.replaceChildren();
    if (!text) {
      return;
    }
    const line = document.createElement("p");
    line.className = "alert" + (kind === "error" ? " alert--error" : "");
    line.textContent = text;
    statusBox.appendChild(line);
  }

  function showHint(text) {
    hint.textContent = text || "";
    hint.hidden = !text;
  }

  // The filters of the form, as the endpoints read them (check boxes repeat "connector").
  function filterParams() {
    const params = new URLSearchParams();
    for (const [name, value] of new FormData(form)) {
      if (!SEARCH_FIELDS.has(name) && String(value).trim() !== "") {
        params.append(name, String(value).trim());
      }
    }
    return params;
  }

  // The list's order near a place (the sort control sits by the list, in the form by its form attribute).
  function sortParams(params) {
    if (sortSelect && sortSelect.value && sortSelect.value !== "distance") {
      params.set("sort", sortSelect.value);
    }
    return params;
  }

  function corridor() {
    return form.elements.corridor_km.value || String(route.corridorKm);
  }

  // The route in an address: the typed places when the page was asked with them (it names them again), else
  // the polyline.
  function routeParams(params, withPolyline) {
    params.set("mode", "route");
    const from = initialParams.get("from");
    const to = initialParams.get("to");
    if (route.straight && from && to) {
      params.set("from", from);
      params.set("to", to);
    }
    if (withPolyline || !(route.straight && from && to)) {
      params.set("polyline", route.polyline);
    }
    params.set("corridor_km", corridor());
    return params;
  }

  function showOrderControls() {
    if (sortControl) {
      sortControl.hidden = Boolean(route);
    }
    if (orderNote) {
      orderNote.hidden = !route;
    }
  }

  function withOrigin(url) {
    if (!origin) {
      return url;
    }
    const separator = url.includes("?") ? "&" : "?";
    return url + separator + new URLSearchParams({ lat: origin.lat.toFixed(6), lon: origin.lon.toFixed(6) });
  }

  async function fetchFrom(kind, url, accept) {
    if (pending[kind]) {
      pending[kind].abort();
    }
    const controller = new AbortController();
    pending[kind] = controller;
    working(1);
    try {
      const response = await fetch(url, { headers: { Accept: accept }, signal: controller.signal, credentials: "same-origin" });
      if (!response.ok) {
        let detail = null;
        try {
          detail = (await response.json()).detail;
        } catch (error) {
          detail = null;
        }
        const failure = new Error(detail || response.statusText);
        failure.status = response.status;
        failure.detail = detail;
        throw failure;
      }
      return await (accept === "application/json" ? response.json() : response.text());
    } finally {
      if (pending[kind] === controller) {
        pending[kind] = null;
      }
      working(-1);
    }
  }

  function failed(error) {
    if (error.name === "AbortError") {
      return;
    }
    say(error.status === 429 ? words.busy : words.failed, "error");
  }

  // --- the details panel ---------------------------------------------------------------------------------------

  async function openPanel(url, from) {
    opener = from || null;
    try {
      panelBody.innerHTML = await fetchFrom("panel", withOrigin(url), "text/html");
    } catch (error) {
      failed(error);
      return;
    }
    panel.hidden = false;
    root.classList.add("finder--panel-open");
    const title = document.getElementById("finder-panel-title");
    (title || closeButton).focus();
  }

  function closePanel() {
    if (panel.hidden) {
      return;
    }
    panel.hidden = true;
    root.classList.remove("finder--panel-open");
    panelBody.replaceChildren();
    const back = opener && document.body.contains(opener) ? opener : document.getElementById("finder-list-title");
    if (back) {
      if (!back.hasAttribute("tabindex") && !back.matches("a, button, input, select, textarea")) {
        back.setAttribute("tabindex", "-1");
      }
      back.focus();
    }
    opener = null;
  }

  closeButton.addEventListener("click", closePanel);
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !panel.hidden) {
      event.preventDefault();
      closePanel();
    }
  });

  // --- the list ---------------------------------------------------------------------------------------------------

  function isPlainClick(event) {
    return event.button === 0 && !event.metaKey && !event.ctrlKey && !event.shiftKey && !event.altKey;
  }

  results.addEventListener("click", async (event) => {
    if (!isPlainClick(event)) {
      return;
    }
    const item = event.target.closest("a[data-panel]");
    if (item) {
      event.preventDefault();
      openPanel(item.dataset.panel, item);
      return;
    }
    const more = event.target.closest("a[data-more]");
    if (more) {
      event.preventDefault();
      await showMore(more);
    }
  });

  async function showMore(link) {
    let html;
    try {
      html = await fetchFrom("more", link.dataset.more, "text/html");
    } catch (error) {
      failed(error);
      return;
    }
    const page = document.createElement("template");
    page.innerHTML = html;
    const list = results.querySelector(".finder-results");
    const items = Array.from(page.content.querySelectorAll(".finder-result"));
    items.forEach((item) => list.appendChild(item));
    const next = page.content.querySelector(".finder-more");
    const paragraph = link.closest(".finder-more");
    if (next) {
      paragraph.replaceWith(next);
    } else {
      paragraph.remove();
    }
    const first = items.length ? items[0].querySelector("a") : null;
    if (first) {
      first.focus();
    }
  }

  // --- without Leaflet (not loaded, blocked): the list and the panel still work --------------------------------------

  function showNotice(text) {
    notice.textContent = text;
    notice.hidden = false;
  }

  if (!window.L || !window.L.markerClusterGroup) {
    root.classList.add("finder--no-map");
    showNotice(words.noTiles);
    return;
  }
  const L = window.L;

  // --- the map ------------------------------------------------------------------------------------------------------

  const urlParams = new URLSearchParams(window.location.search);
  const map = L.map(mapElement, { keyboard: true, minZoom: 3, maxZoom: 19, zoomControl: true });
  mapElement.setAttribute("aria-label", words.map);
  map.attributionControl.setPrefix('<a href="https://leafletjs.com">Leaflet</a>');
  const tiles = L.tileLayer(settings.tiles.url, {
    attribution: settings.tiles.attribution + " · " + window.FinderMarkers.escapeHtml(settings.placeAttribution),
    maxZoom: 19,
    crossOrigin: false,
  });
  let tileLoaded = false;
  let tileErrors = 0;
  tiles.on("tileload", () => {
    tileLoaded = true;
    root.classList.remove("finder--no-tiles");
    notice.hidden = true;
  });
  tiles.on("tileerror", () => {
    tileErrors += 1;
    if (!tileLoaded && tileErrors >= 2 && !root.classList.contains("finder--no-tiles")) {
      // The tile server cannot be reached: say so; the markers and the list still work.
      root.classList.add("finder--no-tiles");
      showNotice(words.noTiles);
      map.invalidateSize();
    }
  });
  tiles.addTo(map);

  // Markers, the server's grid counts and their clusters (static/js/finder_markers.js).
  const markers = window.FinderMarkers.create(L, map, words, openPanel);
  const cluster = markers.cluster;
  const markerFor = markers.markerFor;
  const cellFor = markers.cellFor;
  let here = null; // the driver's position, when they asked

  function clamp(value, low, high) {
    return Math.min(high, Math.max(low, value));
  }

  function visibleBox() {
    const bounds = map.getBounds();
    return [
      clamp(bounds.getWest(), -180, 180),
      clamp(bounds.getSouth(), -90, 90),
      clamp(bounds.getEast(), -180, 180),
      clamp(bounds.getNorth(), -90, 90),
    ];
  }

  function tooLarge(box) {
    return box[3] - box[1] > settings.maxSpan.lat || box[2] - box[0] > settings.maxSpan.lon;
  }

  async function loadMarkers() {
    const box = visibleBox();
    if (tooLarge(box)) {
      cluster.clearLayers();
      showHint(words.zoomIn);
      return;
    }
    const params = filterParams();
    params.set("bbox", box.map((value) => value.toFixed(5)).join(","));
    let answer;
    try {
      answer = await fetchFrom("markers", settings.urls.markers + "?" + params, "application/json");
    } catch (error) {
      failed(error);
      return;
    }
    cluster.clearLayers();
    cluster.addLayers(answer.markers.map(markerFor).concat(answer.clusters.map(cellFor)));
    showHint(answer.total === 0 ? words.empty : "");
  }

  async function loadRouteList() {
    const params = routeParams(filterParams(), true);
    try {
      results.innerHTML = await fetchFrom("list", settings.urls.results + "?" + params, "text/html");
    } catch (error) {
      failed(error);
    }
  }

  async function loadList() {
    if (route) {
      await loadRouteList();
      return;
    }
    const center = map.getCenter();
    const corner = map.getBounds().getNorthEast();
    const radius = clamp(map.distance(center, corner) / 1000, 0.5, settings.maxRadiusKm);
    const params = sortParams(filterParams());
    params.set("lat", center.lat.toFixed(6));
    params.set("lon", center.lng.toFixed(6));
    params.set("radius_km", radius.toFixed(3));
    try {
      results.innerHTML = await fetchFrom("list", settings.urls.results + "?" + params, "text/html");
    } catch (error) {
      failed(error);
    }
  }

  function rememberView() {
    const params = route ? routeParams(filterParams(), false) : sortParams(filterParams());
    const center = map.getCenter();
    params.set("lat", center.lat.toFixed(5));
    params.set("lon", center.lng.toFixed(5));
    params.set("z", String(map.getZoom()));
    window.history.replaceState(null, "", settings.urls.page + "?" + params);
  }

  let timer = null;
  let listToo = false;
  // What changed decides what reloads: a move reloads the markers (and the list near a place: it follows the
  // map); a filter reloads both; along a route the list follows the route, not the map.
  function refreshSoon(list) {
    listToo = listToo || list;
    if (timer === null) {
      working(1);
    }
    window.clearTimeout(timer);
    timer = window.setTimeout(() => {
      timer = null;
      rememberView();
      loadMarkers();
      if (listToo) {
        loadList();
      }
      listToo = false;
      working(-1); // the loads count themselves from here
    }, 250);
  }

  map.on("moveend", () => refreshSoon(!route));

  form.addEventListener("change", (event) => {
    const name = event.target.name;
    if (name === "corridor_km") {
      if (route) {
        refreshSoon(true);
      }
    } else if (!SEARCH_FIELDS.has(name)) {
      refreshSoon(true);
    }
  });

  if (sortSelect) {
    document.getElementById("finder-sort-apply").hidden = true; // the list follows the choice at once
    sortSelect.addEventListener("change", () => refreshSoon(true));
  }

  // --- the route --------------------------------------------------------------------------------------------------

  function drawRoute() {
    const line = L.polyline(route.points, { className: "finder-route", weight: 5, opacity: 0.85, interactive: false });
    const ends = [
      [route.points[0], words.routeStart, "finder-route-end finder-route-end--start"],
      [route.points[route.points.length - 1], words.routeEnd, "finder-route-end"],
    ].map(([point, label, className]) => L.circleMarker(point, { radius: 7, className: className }).bindTooltip(label));
    routeLayer = L.layerGroup([line].concat(ends)).addTo(map);
    return line.getBounds();
  }

  // Back to searching near a place (a place typed, "use my location"): the route is no longer drawn nor listed.
  function leaveRoute() {
    if (!route) {
      return;
    }
    route = null;
    if (routeLayer) {
      routeLayer.remove();
      routeLayer = null;
    }
    form.querySelector("input[name=mode][value=near]").checked = true;
    showOrderControls();
  }

  form.addEventListener("submit", async (event) => {
    if (form.elements.mode.value === "route") {
      return; // the server geocodes both places and searches along the route: a normal submission
    }
    event.preventDefault();
    leaveRoute();
    const query = form.elements.q.value.trim();
    if (!query) {
      refreshSoon(true); // "Apply filters"
      return;
    }
    say(words.searching);
    let place;
    try {
      place = await fetchFrom("place", settings.urls.place + "?" + new URLSearchParams({ q: query }), "application/json");
    } catch (error) {
      if (error.name !== "AbortError") {
        say(error.status === 429 ? words.busy : error.detail || words.failed, "error");
      }
      return;
    }
    origin = { lat: place.lat, lon: place.lon };
    say(words.found.replace("{place}", place.label));
    closePanel();
    map.setView([place.lat, place.lon], 13);
  });

  if ("geolocation" in navigator) {
    locateButton.hidden = false;
    locateButton.addEventListener("click", () => {
      say(words.locating);
      navigator.geolocation.getCurrentPosition(
        (position) => {
          leaveRoute();
          origin = { lat: position.coords.latitude, lon: position.coords.longitude };
          if (here) {
            here.remove();
          }
          here = L.circleMarker([origin.lat, origin.lon], { radius: 8, className: "finder-here" }).bindTooltip(words.yourLocation);
          here.addTo(map);
          say("");
          map.setView([origin.lat, origin.lon], 14);
        },
        () => say(words.noLocation, "error"),
        { enableHighAccuracy: false, timeout: 10000, maximumAge: 60000 },
      );
    });
  }

  const zoom = parseInt(urlParams.get("z") || "", 10);
  const kept = [parseFloat(urlParams.get("lat") || ""), parseFloat(urlParams.get("lon") || "")];
  if (route) {
    const bounds = drawRoute();
    if (Number.isInteger(zoom) && kept.every(Number.isFinite)) {
      map.setView(kept, clamp(zoom, 3, 19)); // the view the driver left (a reload)
    } else {
      map.fitBounds(bounds, { padding: [30, 30], maxZoom: 15 });
    }
  } else if (settings.start) {
    map.setView([settings.start.lat, settings.start.lon], Number.isInteger(zoom) ? clamp(zoom, 3, 19) : 13);
  } else {
    map.setView([settings.view.lat, settings.view.lon], settings.view.zoom);
  }
})();
