// firehook UI: the script editor. CodeMirror 5 (vendored) over each textarea[data-editor],
// which stays the form field: the editor writes back into it on submit. The line of an error
// (data-error-line, from the "(line N, column M)" of the message) is marked and scrolled to.
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    if (typeof window.CodeMirror !== "function") { return; }
    document.querySelectorAll("textarea[data-editor]").forEach(function (area) {
      var editor = window.CodeMirror.fromTextArea(area, {
        mode: "javascript", lineNumbers: true, lineWrapping: false, indentUnit: 2, tabSize: 2,
        viewportMargin: Infinity, gutters: ["CodeMirror-linenumbers", "cm-error-gutter"]
      });
      editor.getWrapperElement().setAttribute("data-editor-for", area.id);
      // The hidden textarea cannot take the browser's "required" check (it cannot be focused);
      // it is kept in step with the editor instead, and the server says when it is empty.
      area.removeAttribute("required");
      editor.on("change", function () { editor.save(); });
      var line = parseInt(area.getAttribute("data-error-line") || "0", 10);
      if (line > 0 && line <= editor.lineCount()) {
        editor.addLineClass(line - 1, "wrap", "cm-error-line");
        var mark = document.createElement("span");
        mark.className = "cm-error-gutter";
        mark.textContent = "●";
        mark.title = "the error is on this line";
        editor.setGutterMarker(line - 1, "cm-error-gutter", mark);
        editor.scrollIntoView({line: line - 1, ch: 0}, 80);
      }
    });
  });
})();
