// Written for the rankcourse book (not vendored). Loaded after require.js and before
// embed-amd.js: the ipywidgets HTML manager locates its font files from the URL RequireJS
// gives its own AMD module, which by default is relative to the page (a 404 on every
// chapter). Map that module prefix onto this folder, where the fonts are kept.
require.config({
  paths: {
    "@jupyter-widgets/html-manager/dist": new URL(".", document.currentScript.src).href.replace(/\/$/, ""),
  },
});
