// First-party audience measurement for the demo. The server includes this file only after the
// visitor consented to "audience-measurement"; it sets the `_ga` cookie the policy declares and
// makes no network request.
(() => {
  if (document.cookie.split('; ').some((c) => c.startsWith('_ga='))) return;
  const random = Math.floor(Math.random() * 2147483647);
  const seconds = Math.floor(Date.now() / 1000);
  const thirteenMonths = 13 * 31 * 24 * 3600;
  // biome-ignore lint/suspicious/noDocumentCookie: the demo tracker sets a first-party cookie, as real ones do
  document.cookie = `_ga=GA1.1.${random}.${seconds}; Max-Age=${thirteenMonths}; Path=/; SameSite=Lax`;
})();
