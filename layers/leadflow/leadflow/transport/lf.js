/* leadflow tracking snippet: <script src="https://<api>/t/lf.js" async></script>
 * Keeps a first-party anonymous visitor id (cookie lf_vid on your site), sends page views with
 * time on page, downloads and HTML5 video progress to /t/e, and adds to every form the visitor id
 * (a submission ties the visitor's earlier visits to the lead), a nonce (one submission per
 * rendered form) and a render time signed by leadflow (GET /t/ts, for min_fill_seconds). No third-party cookie,
 * no fingerprinting; sendBeacon with text/plain bodies needs no CORS preflight. */
(function () {
  "use strict";
  var script = document.currentScript;
  var endpoint = new URL("/t/e", script ? script.src : window.location.href).href;
  var match = document.cookie.match(/(?:^|; )lf_vid=([A-Za-z0-9_-]{8,64})/);
  var vid = match ? match[1] : (Date.now().toString(36) + Math.random().toString(36).slice(2, 12));
  document.cookie = "lf_vid=" + vid + "; path=/; max-age=" + 60 * 60 * 24 * 395 + "; SameSite=Lax";
  var started = Date.now();

  function send(event) {
    event.visitor_id = vid;
    event.url = event.url || window.location.href;
    var body = JSON.stringify(event);
    if (navigator.sendBeacon && navigator.sendBeacon(endpoint, new Blob([body], { type: "text/plain" }))) { return; }
    fetch(endpoint, { method: "POST", body: body, keepalive: true, headers: { "Content-Type": "text/plain" } });
  }

  /* One page_view per page; leaving it reports the time spent as page_time (not a second view). */
  send({ type: "page_view", title: document.title, referrer: document.referrer || undefined });
  var reported = false;
  function leave() {
    if (reported) { return; }
    reported = true;
    send({ type: "page_time", title: document.title, seconds: Math.round((Date.now() - started) / 1000) });
  }
  document.addEventListener("visibilitychange", function () { if (document.visibilityState === "hidden") { leave(); } });
  window.addEventListener("pagehide", leave);

  document.addEventListener("click", function (e) {
    var link = e.target && e.target.closest ? e.target.closest("a[href]") : null;
    if (link && /\.(pdf|zip|docx?|xlsx?|pptx?|csv|epub)(\?|#|$)/i.test(link.href)) {
      send({ type: "download", url: link.href, asset: link.getAttribute("download") || undefined });
    }
  }, true);

  function watch(video) {
    var sent = {};
    video.addEventListener("timeupdate", function () {
      if (!video.duration) { return; }
      var percent = (video.currentTime / video.duration) * 100;
      [25, 50, 75, 100].forEach(function (mark) {
        if (percent >= (mark === 100 ? 99 : mark) && !sent[mark]) {
          sent[mark] = true;
          send({ type: "video_progress", percent: mark, asset: video.currentSrc || video.getAttribute("data-name") || undefined });
        }
      });
    });
  }
  function hidden(form, name, value, keep) {
    var input = form.querySelector('input[name="' + name + '"]');
    if (input && keep) { return; }
    if (!input) {
      input = document.createElement("input");
      input.type = "hidden"; input.name = name;
      form.appendChild(input);
    }
    input.value = value;
  }
  function nonce() {
    var bytes = new Uint8Array(16);
    (window.crypto || window.msCrypto).getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return (b + 256).toString(16).slice(1); }).join("");
  }
  function fields(form) {  /* what the visitor entered, without leadflow's own hidden fields */
    var data = [];
    Array.prototype.forEach.call(form.elements, function (el) {
      if (el.name && el.name.indexOf("_lf_") !== 0 && (!/^(checkbox|radio)$/.test(el.type) || el.checked)) { data.push(el.name + "=" + el.value); }
    });
    return data.join("&");
  }
  /* A signed render time (so min_fill_seconds holds for forms on any site) and a nonce per
   * submission: a double click re-sends the same nonce (stored once); changed fields get a new one. */
  var tsEndpoint = new URL("/t/ts", endpoint).href;
  function stamp(forms) {
    if (!forms.length || !window.fetch) { return; }
    fetch(tsEndpoint, { credentials: "omit" }).then(function (r) { return r.json(); }).then(function (d) {
      if (d && d.ts) { forms.forEach(function (form) { hidden(form, "_lf_ts", d.ts, false); }); }
    }).catch(function () { /* no render time: leadflow counts the post as unjudged */ });
  }
  function tagForms() {
    var fresh = [];
    Array.prototype.forEach.call(document.forms, function (form) {
      hidden(form, "_lf_vid", vid, true);
      if (form.dataset.lfTagged) { return; }
      form.dataset.lfTagged = "1";
      hidden(form, "_lf_nonce", nonce(), true);
      form.addEventListener("submit", function () {
        var now = fields(form);
        if (form.dataset.lfSent !== undefined && form.dataset.lfSent !== now) { hidden(form, "_lf_nonce", nonce(), false); }
        form.dataset.lfSent = now;
      }, true);
      fresh.push(form);
    });
    stamp(fresh);
    Array.prototype.forEach.call(document.querySelectorAll("video"), function (video) {
      if (!video.dataset.lfWatched) { video.dataset.lfWatched = "1"; watch(video); }
    });
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", tagForms); } else { tagForms(); }
  window.leadflow = { visitorId: vid, track: function (name, data) { var e = data || {}; e.type = "custom"; e.name = name; send(e); } };
})();
