// Proctor dashboard: small conveniences only; every page works without them.
// "/" focuses the search box; changing a filter menu submits its form.
(function () {
  "use strict";
  document.addEventListener("keydown", function (event) {
    var target = event.target;
    var typing = target && (target.tagName === "INPUT" || target.tagName === "SELECT" || target.tagName === "TEXTAREA");
    if (event.key === "/" && !typing && !event.ctrlKey && !event.metaKey && !event.altKey) {
      var box = document.getElementById("q");
      if (box) { event.preventDefault(); box.focus(); }
    }
  });
  var forms = document.querySelectorAll("form.autosubmit");
  Array.prototype.forEach.call(forms, function (form) {
    form.addEventListener("change", function (event) {
      if (event.target && event.target.tagName === "SELECT") { form.submit(); }
    });
  });
})();
