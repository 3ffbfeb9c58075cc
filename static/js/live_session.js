// Keeps a part of a page up to date without reloading it (CSP: no inline script; every page works without it).
// An element with data-poll-url is given the "html" of that JSON endpoint whenever its version changes: the
// ETag goes back as If-None-Match, and while nothing changed the answer is an empty 304. data-poll-etag is the
// version the page was rendered with, data-poll-seconds the interval. A "final" answer (a command that got its
// result) ends the polling; a hidden tab pauses it; failures back off up to eight times the interval.
(function () {
  "use strict";

  function keepUpToDate(element) {
    const url = element.dataset.pollUrl;
    const seconds = Math.max(Number(element.dataset.pollSeconds) || 15, 2);
    let etag = element.dataset.pollEtag ? '"' + element.dataset.pollEtag + '"' : null;
    let failures = 0;
    let timer = null;
    let stopped = false;

    function schedule() {
      if (!stopped && timer === null) {
        timer = window.setTimeout(check, seconds * 1000 * Math.min(2 ** failures, 8));
      }
    }

    async function check() {
      timer = null;
      if (document.hidden) {
        return; // resumed by visibilitychange
      }
      try {
        const headers = { Accept: "application/json" };
        if (etag) {
          headers["If-None-Match"] = etag;
        }
        const response = await fetch(url, { headers: headers, credentials: "same-origin", cache: "no-store" });
        const json = (response.headers.get("Content-Type") || "").indexOf("application/json") === 0;
        if (response.status === 304) {
          failures = 0;
        } else if (response.ok && json) {
          const body = await response.json();
          etag = response.headers.get("ETag") || etag;
          element.innerHTML = body.html; // rendered and escaped by the server
          failures = 0;
          stopped = body.final === true;
        } else if (response.ok || response.status === 401 || response.status === 403 || response.status === 404) {
          stopped = true; // logged out (the login page came back) or gone: a reload will say why
        } else {
          failures += 1;
        }
      } catch (error) {
        failures += 1; // offline for a moment: try again later
      }
      schedule();
    }

    document.addEventListener("visibilitychange", function () {
      if (!document.hidden) {
        schedule();
      }
    });
    schedule();
  }

  document.querySelectorAll("[data-poll-url]").forEach(keepUpToDate);
})();
