// Bundle the SDK with esbuild: node build.mjs <outdir>
//   rum.js        IIFE, global `heron`, starts itself from the script tag's data-* attributes
//   rum.mjs       ESM: import heron from ".../rum.mjs"
//   rum-react.mjs ESM React helper; imports the SDK instance from "./rum.mjs"
import { build } from 'esbuild';

const outdir = process.argv[2] || 'dist';
const common = { bundle: true, minify: true, mangleProps: /_$/, target: 'es2022', legalComments: 'none', logLevel: 'warning' };

// rum-react.mjs shares rum.mjs's instance: its import of the SDK stays an import.
const sdkExternal = {
  name: 'sdk-external',
  setup(b) {
    b.onResolve({ filter: /^\.\/index\.js$/ }, () => ({ path: './rum.mjs', external: true }));
  },
};

await Promise.all([
  build({ ...common, entryPoints: ['src/auto.js'], format: 'iife', outfile: `${outdir}/rum.js` }),
  build({ ...common, entryPoints: ['src/index.js'], format: 'esm', outfile: `${outdir}/rum.mjs` }),
  build({ ...common, entryPoints: ['src/react.js'], format: 'esm', outfile: `${outdir}/rum-react.mjs`, plugins: [sdkExternal] }),
]);
