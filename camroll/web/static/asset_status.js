// Follows a newly received asset until its processing job has a verdict, for the upload page
// and the share page: resolves to ["stored", "Stored"] or ["quarantined", "Quarantined: why"].
window.camrollAwaitAsset = async function (assetId) {
  "use strict";
  for (let wait = 500; ; wait = Math.min(wait * 1.5, 4000)) {
    const res = await fetch(`/api/assets/${encodeURIComponent(assetId)}`, { credentials: "same-origin" });
    if (!res.ok) {
      let why = res.statusText;
      try { why = (await res.json()).detail || why; } catch { /* not JSON */ }
      return ["failed", `Received, but its status could not be read: ${why}`];
    }
    const a = await res.json();
    if (a.status === "ready") return ["stored", "Stored"];
    if (a.status === "quarantined") {
      return ["quarantined", `Quarantined: ${a.quarantine_detail || a.quarantine_reason || "it could not be read"}`];
    }
    await new Promise((r) => setTimeout(r, wait));
  }
};
