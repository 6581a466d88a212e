// Loaded with `node --import ./support/register-resolve.mjs`: lets the copyable examples in ../examples/
// (which import "@apollo/client", "@urql/core", … like any app would) resolve their packages from
// e2e/node_modules, so the tests exercise the very files users copy.
import { register } from 'node:module';

register('./resolve-hook.mjs', import.meta.url);
