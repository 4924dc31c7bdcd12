// Written for the rankcourse book (not vendored). Loaded after require.js and before
// embed-amd.js: the ipywidgets HTML manager locates its font files from the URL RequireJS
// gives its own AMD module, which by default is relative to the page (a 404 on every
// chapter). Map that module prefix onto this folder, where the fonts are kept.
require.config({
  paths: {
    "@jupyter-widgets/html-manager/dist": new URL(".", document.currentScript.src).href.replace(/\/$/, ""),
  },
});

// The explorers' figures are drawn by the widget manager as <img> without alt text. Each one
// redraws the numbered figure just above it on the page: give it that figure's alt text.
(function () {
  function describe(img) {
    var source = null;
    document.querySelectorAll("figure img[alt]").forEach(function (candidate) {
      if (candidate.compareDocumentPosition(img) & Node.DOCUMENT_POSITION_FOLLOWING) {
        source = candidate;
      }
    });
    if (source === null) {
      img.alt = "Interactive figure drawn by the widget above.";
      return;
    }
    var number = source.closest("figure").querySelector(".caption-number");
    var name = number ? number.textContent.trim() : "the figure above";
    img.alt = "Interactive version of " + name + ": " + source.alt;
  }
  new MutationObserver(function () {
    document.querySelectorAll(".widget-output img:not([alt]), .jupyter-widgets img:not([alt])")
      .forEach(describe);
  }).observe(document.documentElement, { childList: true, subtree: true });
})();
