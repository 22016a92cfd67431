// Code 128 from the camera, beside qr-scanner's QR codes: the ticket's barcode (its redeem code)
// and the student card's (the NIM). The browser's own BarcodeDetector where it reads Code 128
// (Chrome on Android), else the vendored ZXing decoder (static/vendor/zxing, loaded on first use).
// Both read the frames of the video qr-scanner already shows: one camera, two decoders.

const FRAME_MS = 250; // four looks a second: enough for a card held up, cheap on a phone
const MAX_WIDTH = 800; // frames are scaled down to this before decoding

async function nativeDetector() {
  if (!("BarcodeDetector" in window)) return null;
  try {
    const formats = await window.BarcodeDetector.getSupportedFormats();
    return formats.includes("code_128") ? new window.BarcodeDetector({ formats: ["code_128"] }) : null;
  } catch {
    return null;
  }
}

async function zxingDecoder(url) {
  if (!window.ZXing) await import(url); // a UMD bundle: it sets window.ZXing
  const ZXing = window.ZXing;
  const reader = new ZXing.Code128Reader();
  const hints = new Map([[ZXing.DecodeHintType.TRY_HARDER, true]]);
  const canvas = document.createElement("canvas");
  const context = canvas.getContext("2d", { willReadFrequently: true });
  return (video) => {
    const scale = Math.min(1, MAX_WIDTH / video.videoWidth);
    canvas.width = Math.round(video.videoWidth * scale);
    canvas.height = Math.round(video.videoHeight * scale);
    context.drawImage(video, 0, 0, canvas.width, canvas.height);
    const bitmap = new ZXing.BinaryBitmap(new ZXing.HybridBinarizer(new ZXing.HTMLCanvasElementLuminanceSource(canvas)));
    try {
      return reader.decode(bitmap, hints).getText();
    } catch {
      return null; // no barcode in this frame
    }
  };
}

// Watch ``video`` for Code 128 barcodes and call ``onCode(text)`` for each; returns a stop function.
export async function startBarcodes(video, onCode, zxingUrl) {
  const native = await nativeDetector();
  const decode = native
    ? async (frame) => {
        const found = await native.detect(frame);
        return found.length ? found[0].rawValue : null;
      }
    : await zxingDecoder(zxingUrl);
  let running = true;
  async function look() {
    if (!running) return;
    if (video.readyState >= 2 && video.videoWidth) {
      const text = await decode(video);
      if (text && running) onCode(text);
    }
    if (running) setTimeout(look, FRAME_MS);
  }
  look();
  return () => {
    running = false;
  };
}
