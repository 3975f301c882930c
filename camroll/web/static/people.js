// People: save a name in place (PATCH /api/people/{id}) on Enter or on leaving the field, so the
// grid stays put; without JavaScript the same form posts and the page reloads.
document.querySelectorAll('.person form.rename').forEach(form => {
  const input = form.querySelector('input.name');
  const id = form.closest('.person').dataset.id;
  let last = input.value;
  const save = async () => {
    if (input.value === last) return;
    const body = input.value.trim() ? {name: input.value} : {clear: ['name']};
    const r = await fetch(`/api/people/${id}`, {
      method: 'PATCH', headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body),
    });
    input.classList.toggle('saved', r.ok);
    input.classList.toggle('failed', !r.ok);
    if (r.ok) last = input.value;
  };
  form.addEventListener('submit', e => { e.preventDefault(); save(); });
  input.addEventListener('change', save);
});
