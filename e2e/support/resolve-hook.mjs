// Resolve hook (see register-resolve.mjs): a bare specifier that cannot be found from the importing file
// is resolved again as if imported from e2e/package.json.
const fallbackParent = new URL('../package.json', import.meta.url).href;

export async function resolve(specifier, context, nextResolve) {
  try {
    return await nextResolve(specifier, context);
  } catch (err) {
    const bare = !/^(\.|\/|[a-z][a-z0-9+.-]*:)/i.test(specifier);
    if (!bare || err?.code !== 'ERR_MODULE_NOT_FOUND' || context.parentURL === fallbackParent) throw err;
    return nextResolve(specifier, { ...context, parentURL: fallbackParent });
  }
}
