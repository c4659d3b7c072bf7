// A proxyless gRPC client on @grpc/grpc-js-xds: argv[2] is the target
// (xds:///NAME), argv[3] a JSON plan of steps {method, metadata, n, until,
// ready}: n calls, or with until calls until n in a row were served by
// that backend (60s at most); ready prints a line READY after the step.
// It then prints a JSON list of {backend, code, details}, one per call.
// The bootstrap comes from GRPC_XDS_BOOTSTRAP_CONFIG.
const grpc = require('@grpc/grpc-js');
require('@grpc/grpc-js-xds').register();

const [target, planJSON] = process.argv.slice(2);
const client = new grpc.Client(target, grpc.credentials.createInsecure());

function call(method, md) {
  return new Promise((resolve) => {
    const meta = new grpc.Metadata();
    for (const [k, v] of Object.entries(md || {})) meta.set(k, v);
    let backend = '';
    // Empty messages encode as zero bytes, so no .proto is needed.
    const c = client.makeUnaryRequest('/grpc.testing.TestService/' + method,
      (x) => x, (b) => b, Buffer.alloc(0), meta, { deadline: Date.now() + 30000 },
      (err) => resolve({ backend, code: err ? err.code : 0, details: err ? err.details : '' }));
    c.on('metadata', (m) => {
      const b = m.get('backend');
      if (b.length) backend = String(b[0]);
    });
  });
}

(async () => {
  const out = [];
  for (const p of JSON.parse(planJSON)) {
    if (p.until) {
      const end = Date.now() + 60000;
      let run = 0;
      while (run < p.n && Date.now() < end) {
        const r = await call(p.method, p.metadata);
        out.push(r);
        run = r.code === 0 && r.backend === p.until ? run + 1 : 0;
      }
    } else {
      for (let i = 0; i < p.n; i++) out.push(await call(p.method, p.metadata));
    }
    if (p.ready) console.log('READY');
  }
  console.log(JSON.stringify(out));
  client.close();
  process.exit(0);
})();
