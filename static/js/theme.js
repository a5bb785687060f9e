// Applied before first paint so a dark-mode user never sees a white flash.
(function () {
  var stored = null;
  try { stored = localStorage.getItem("mailroom-theme"); } catch (e) { /* private mode */ }
  if (stored === "light" || stored === "dark") {
    document.documentElement.setAttribute("data-theme", stored);
  }
})();
