// Ideas: upload a track of one's own for recaps. The file goes to POST /api/ideas/tracks as it
// is (no multipart copy on the server's disk); the server checks it decodes and says why not.
const form = document.getElementById('track-upload');
if (form) {
  const status = document.getElementById('track-status');
  form.addEventListener('submit', async e => {
    e.preventDefault();
    const file = form.querySelector('input[type=file]').files[0];
    if (!file) return;
    status.textContent = `Uploading ${file.name}…`;
    const url = `${form.dataset.endpoint}?name=${encodeURIComponent(file.name)}`;
    const r = await fetch(url, {
      method: 'POST', headers: {'Content-Type': 'application/octet-stream'}, body: file,
    });
    if (r.ok) {
      location.assign('/ideas#music');
      location.reload();
      return;
    }
    const answer = await r.json().catch(() => ({}));
    status.textContent = `Not added: ${typeof answer.detail === 'string' ? answer.detail : r.statusText}`;
  });
}
