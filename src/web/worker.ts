/**
 * The page's worker: the library runs here, off the main thread, where FileReaderSync
 * lets the checkpoint readers slice the chosen File lazily (never copied whole).
 * Messages: {id, op, args} in; {id, type: 'progress' | 'result' | 'error', ...} out.
 */
import type * as Lib from './lib.js';

type LibT = typeof Lib;
const libP: Promise<LibT> = import(/* @vite-ignore */ new URL('./repmlp.mjs', import.meta.url).href) as Promise<LibT>;

interface Request {
  id: number;
  op: string;
  args: Record<string, unknown>;
}

let current: File | null = null;

const post = (msg: unknown, transfer: Transferable[] = []) => (self as unknown as { postMessage(m: unknown, t: Transferable[]): void }).postMessage(msg, transfer);

function base(name: string): string {
  return name.replace(/\.(pth\.tar|pth|pt|safetensors|ckpt|bin|tar)$/i, '') || 'checkpoint';
}

async function handle(lib: LibT, req: Request): Promise<{ value: unknown; transfer?: Transferable[] }> {
  const a = req.args;
  const progress = (done: number, total: number) => post({ id: req.id, type: 'progress', done, total });
  const arch = (a.arch as Lib.ArchInput | undefined) || undefined;
  if (req.op === 'open') {
    current = a.file as File;
    return { value: await lib.inspect(current) };
  }
  if (req.op === 'backend') return { value: await lib.setBackend() };
  if (req.op === 'ping') return { value: true };
  if (!current) throw new lib.UsageError('choose a checkpoint first (step 1)');
  const f = current;
  const b = base(f.name);
  switch (req.op) {
    case 'prefix': {
      const r = await lib.prefix(f, { ...(a.strip ? { strip: a.strip as string } : {}), ...(a.add ? { add: a.add as string } : {}), onProgress: progress });
      return { value: { ...r, name: `${b}${a.add ? '_prefixed' : '_stripped'}.pth` }, transfer: [r.bytes.buffer] };
    }
    case 'convert': {
      const format = a.format === 'safetensors' ? 'safetensors' : 'pth';
      const r = await lib.convert(f, { format, onProgress: progress, ...(arch ? { arch } : {}) });
      return { value: { ...r, name: `${b}_deploy.${format}` }, transfer: [r.bytes.buffer] };
    }
    case 'export-onnx': {
      progress(0, 1);
      const bytes = await lib.exportOnnx(f, { onProgress: progress, ...(arch ? { arch } : {}) });
      return { value: { bytes, name: `${b}.onnx` }, transfer: [bytes.buffer] };
    }
    case 'export-tfjs': {
      progress(0, 1);
      const t = await lib.exportTfjs(f, {
        onProgress: progress, ...(arch ? { arch } : {}),
        ...(a.shardSize ? { shardSize: Number(a.shardSize) } : {}), ...(a.weights ? { weights: a.weights as Lib.ExportOptions['weights'] & string } : {}),
      });
      const bytes = await lib.zipFiles(t.files);
      const shards = t.files.size - 1;
      return { value: { bytes, name: `${b}-tfjs.zip`, shards }, transfer: [bytes.buffer] };
    }
    case 'verify':
      progress(0, 1);
      return { value: await lib.verify(f, { ...(arch ? { arch } : {}), tfjs: a.tfjs === true }) };
    case 'predict': {
      progress(0, 2);
      const clf = await lib.openClassifier(f, { ...(arch ? { arch } : {}), ...(a.meta ? { meta: a.meta as Record<string, unknown> } : {}) });
      progress(1, 2);
      try {
        const preds = await clf.predict(a.images as File[], 5);
        return { value: { predictions: preds, backend: clf.backend, card: clf.meta.source ?? 'defaults (ImageNet)', preprocess: clf.meta.preprocess } };
      } finally {
        clf.close();
      }
    }
    default:
      throw new Error(`unknown operation ${req.op}`);
  }
}

self.onmessage = async (ev: MessageEvent<Request>) => {
  const req = ev.data;
  let lib: LibT;
  try {
    lib = await libP;
  } catch (e) {
    post({ id: req.id, type: 'error', message: `internal error: cannot load repmlp.mjs (${(e as Error).message})` });
    return;
  }
  try {
    const { value, transfer } = await handle(lib, req);
    post({ id: req.id, type: 'result', value }, transfer ?? []);
  } catch (e) {
    const known = e instanceof lib.RepmlpError;
    const msg = (e as Error)?.message ?? String(e);
    post({ id: req.id, type: 'error', message: known ? msg.split('\n')[0] : `internal error: ${msg.split('\n')[0]}`, stack: (e as Error)?.stack });
  }
};
