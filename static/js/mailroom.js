// Small behaviours shared by every page. No inline scripts: the CSP forbids them.
(function () {
  "use strict";

  function currentTheme() {
    var explicit = document.documentElement.getAttribute("data-theme");
    if (explicit === "light" || explicit === "dark") return explicit;
    return window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
  }

  // The toggle says whether dark mode is on, for screen readers and for its own styling.
  function showTheme() {
    var dark = currentTheme() === "dark";
    document.querySelectorAll("[data-theme-toggle]").forEach(function (button) {
      button.setAttribute("aria-pressed", dark ? "true" : "false");
      button.title = dark ? "Switch to light mode" : "Switch to dark mode";
    });
  }
  showTheme();
  window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", showTheme);

  document.addEventListener("click", function (event) {
    var toggle = event.target.closest("[data-theme-toggle]");
    if (toggle) {
      var next = currentTheme() === "dark" ? "light" : "dark";
      document.documentElement.setAttribute("data-theme", next);
      try { localStorage.setItem("mailroom-theme", next); } catch (e) { /* ignore */ }
      showTheme();
      return;
    }
    var copy = event.target.closest("[data-copy]");
    if (copy) {
      var source = document.querySelector(copy.getAttribute("data-copy"));
      if (!source) return;
      source.select();
      var done = function () { copy.textContent = "Copied"; };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(source.value).then(done, function () { document.execCommand("copy"); done(); });
      } else {
        document.execCommand("copy");
        done();
      }
    }
  });

  // Destructive forms name what they destroy and ask first. Forms htmx submits are asked
  // once, in the htmx:confirm handler below, not here as well.
  var HTMX_FORM = "[hx-post],[hx-put],[hx-patch],[hx-delete],[hx-get],[data-hx-post],[data-hx-delete]";
  document.addEventListener("submit", function (event) {
    var form = event.target.closest("form[data-confirm]");
    if (form && form.matches(HTMX_FORM)) return;
    if (form && !window.confirm(form.getAttribute("data-confirm"))) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);

  // htmx honours the same confirmation text on hx-* forms.
  document.addEventListener("htmx:confirm", function (event) {
    var form = event.target.closest("form[data-confirm]");
    if (form && !event.detail.question) {
      event.preventDefault();
      if (window.confirm(form.getAttribute("data-confirm"))) event.detail.issueRequest(true);
    }
  });

  // The server switcher opens the chosen server. With a mouse, choosing is enough; with the
  // keyboard, arrow keys only move the choice (Chromium fires "change" on every arrow press,
  // which would leave the page before the user reaches the server they want) and Enter opens it.
  var keyedChange = false;
  document.addEventListener("keydown", function (event) {
    var select = event.target.closest && event.target.closest("select[data-navigate]");
    if (!select) return;
    if (event.key === "Enter") {
      event.preventDefault();
      if (select.value) window.location.assign(select.value);
    } else if (event.key !== "Tab") {
      keyedChange = true;
    }
  });
  document.addEventListener("pointerdown", function () { keyedChange = false; });
  document.addEventListener("change", function (event) {
    var select = event.target.closest("select[data-navigate]");
    if (!select) return;
    if (keyedChange) {
      keyedChange = false;
      return;
    }
    if (select.value) window.location.assign(select.value);
  });
})();
