// The share page (/share): each file received from the phone's share sheet shows its verdict
// (stored, or quarantined with the reason) once its processing job is done.
(() => {
  "use strict";
  for (const li of document.querySelectorAll(".outcomes li[data-asset-id]")) {
    const what = li.querySelector(".outcome");
    window.camrollAwaitAsset(li.dataset.assetId).then(([state, text]) => {
      li.dataset.state = state;
      what.textContent = text;
    });
  }
})();
