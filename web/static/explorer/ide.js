// Starts GraphiQL (from /static/graphiql/, no CDN) on the explorer's IDE page.
// Queries go to the explorer's own /explorer/graphql, same origin, with the session's CSRF
// token and the purpose picked on the page; the explorer adds the analyst's access token,
// which this page never sees. Without JavaScript the page says to use the query form.
(function () {
  "use strict";
  var root = document.getElementById("graphiql");
  if (!root || !window.React || !window.ReactDOM || !window.GraphiQL) {
    return;
  }
  var purpose = document.getElementById("ide-purpose");
  var saved = document.getElementById("ide-saved");
  var endpoint = root.getAttribute("data-endpoint");
  var csrf = root.getAttribute("data-csrf");

  function fetcher(params) {
    return fetch(endpoint, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "Content-Type": "application/json",
        "X-CSRF-Token": csrf,
        Purpose: purpose.value,
      },
      body: JSON.stringify(params),
    }).then(function (response) {
      return response.json();
    });
  }

  var reactRoot = window.ReactDOM.createRoot(root);
  function show(key, query, variables) {
    reactRoot.render(
      window.React.createElement(window.GraphiQL, {
        key: key,
        fetcher: fetcher,
        defaultQuery: query,
        query: query,
        variables: variables,
        defaultEditorToolsVisibility: Boolean(variables),
        isHeadersEditorEnabled: false,
      })
    );
  }

  function choose() {
    var option = saved.options[saved.selectedIndex];
    if (!option || !option.value) {
      return;
    }
    var wanted = option.getAttribute("data-purpose");
    for (var i = 0; i < purpose.options.length; i += 1) {
      if (purpose.options[i].value === wanted) {
        purpose.selectedIndex = i;
      }
    }
    show(option.value, option.getAttribute("data-query"), option.getAttribute("data-variables"));
  }

  // CodeMirror 5's input textareas and scroll boxes come unlabelled and unfocusable;
  // name each after its editor (WCAG 4.1.2) and let the keyboard scroll them (2.1.1).
  var names = [
    [".graphiql-query-editor", "Query editor"],
    ["[aria-label='Variables']", "Variables editor"],
    ["[aria-label='Headers']", "Headers editor"],
    [".graphiql-response", "Response"],
  ];
  function label() {
    var textareas = root.querySelectorAll(".CodeMirror textarea:not([aria-label])");
    textareas.forEach(function (textarea) {
      var name = "Editor";
      names.forEach(function (pair) {
        if (textarea.closest(pair[0])) {
          name = pair[1];
        }
      });
      textarea.setAttribute("aria-label", name);
    });
    root.querySelectorAll(".CodeMirror-scroll:not([tabindex='0'])").forEach(function (box) {
      box.setAttribute("tabindex", "0");
      var textarea = box.parentNode.querySelector("textarea");
      box.setAttribute("aria-label", (textarea && textarea.getAttribute("aria-label")) || "Editor");
    });
  }
  new MutationObserver(label).observe(root, { childList: true, subtree: true });

  // In an editor Tab indents, so it cannot move focus on; Escape then Tab (or Shift+Tab)
  // does, as the page says (WCAG 2.1.2 No Keyboard Trap). Stopping the Tab before it
  // reaches CodeMirror leaves the browser to move focus.
  var escaped = false;
  root.addEventListener(
    "keydown",
    function (event) {
      var inEditor = event.target.closest && event.target.closest(".CodeMirror");
      if (event.key === "Tab" && escaped && inEditor) {
        event.stopPropagation();
      }
      escaped = event.key === "Escape" && Boolean(inEditor);
    },
    true
  );

  saved.addEventListener("change", choose);
  saved.selectedIndex = 1;
  choose();
})();
