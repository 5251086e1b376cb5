// The draw-a-digit page: strokes on a canvas are sent to POST /api/predict as a PNG,
// and the answer is shown: the digit (or "not sure" and the digits it is torn between),
// ten probabilities, the 28x28 the network saw and, when asked, where it looked.
"use strict";

const pad = document.getElementById("pad");
const ink = pad.getContext("2d");
const seen = document.getElementById("seen").getContext("2d");
const bars = document.getElementById("bars");
const digitView = document.getElementById("digit");
const confidenceView = document.getElementById("confidence");
const message = document.getElementById("message");
const contenders = document.getElementById("contenders");
const saliencyToggle = document.getElementById("saliency");
const PREDICT_EVERY_MS = 150;
let lastImage = null; // the last picture sent, to ask again when the toggle changes
let latest = 0; // the number of the newest request: older answers arriving late are dropped

for (let d = 0; d < 10; d++) {
  const item = document.createElement("li");
  item.innerHTML = `<span>${d}</span><span class="bar"><span class="fill"></span></span><span class="p">–</span>`;
  bars.appendChild(item);
}

function clearPad() {
  ink.fillStyle = "#fff";
  ink.fillRect(0, 0, pad.width, pad.height);
  seen.clearRect(0, 0, 28, 28);
  lastImage = null;
  latest += 1; // an answer still on its way belongs to the cleared drawing
  resetAnswer();
  showMessage("Draw a digit with your mouse, pen or finger.");
  for (const item of bars.children) {
    item.classList.remove("top");
    item.querySelector(".fill").style.width = "0";
    item.querySelector(".p").textContent = "–";
  }
}

function resetAnswer() {
  document.body.classList.remove("unsure");
  contenders.hidden = true;
  digitView.textContent = "";
  confidenceView.textContent = "";
}

function showMessage(text, isError = false) {
  message.textContent = text;
  message.classList.toggle("error", isError);
}

const percent = (p) => `${(100 * p).toFixed(1)} %`;

function show(result) {
  const unsure = result.unsure === true;
  document.body.classList.toggle("unsure", unsure);
  digitView.textContent = unsure ? "?" : result.digit;
  confidenceView.textContent = unsure ? "not sure" : `${percent(result.probabilities[result.digit])} sure`;
  contenders.hidden = !unsure;
  contenders.replaceChildren(...result.contenders.map((c) => {
    const item = document.createElement("li");
    item.textContent = `${c.digit}: ${percent(c.probability)}`;
    return item;
  }));
  const why = result.unlike_digits === true
    ? "This does not look like any digit it has learnt. Its closest guesses:"
    : "Not sure which digit this is. It is torn between:";
  showMessage(unsure ? why : "");
  result.probabilities.forEach((p, d) => {
    const item = bars.children[d];
    item.classList.toggle("top", d === result.digit);
    item.querySelector(".fill").style.width = `${(100 * p).toFixed(1)}%`;
    item.querySelector(".p").textContent = percent(p);
  });
  const image = seen.createImageData(28, 28);
  const heat = result.saliency ? result.saliency.flat() : null;
  result.pixels.flat().forEach((v, i) => {
    const level = Math.round(255 * v);
    if (!heat) { image.data.set([level, level, level, 255], 4 * i); return; }
    const h = heat[i]; // red where erasing the ink lowered the answer most
    image.data.set([Math.round(level * (1 - h) + 255 * h), Math.round(level * (1 - h)),
      Math.round(level * (1 - h)), 255], 4 * i);
  });
  seen.putImageData(image, 0, 0);
}

async function send(body) {
  lastImage = body;
  const request = ++latest;
  const form = new FormData();
  form.append("image", body, "digit.png");
  const url = saliencyToggle.checked ? "/api/predict?saliency=true" : "/api/predict";
  try {
    const response = await fetch(url, { method: "POST", body: form });
    const answer = await response.json();
    if (request !== latest) return;
    if (response.ok) { show(answer); return; }
    resetAnswer();
    showMessage(answer.detail || `error ${response.status}`, true);
  } catch (error) {
    if (request !== latest) return;
    resetAnswer();
    showMessage(`the service did not answer (${error})`, true);
  }
}

// Predict while drawing, at most every PREDICT_EVERY_MS, and once more when a stroke ends.
let pending = null;
let inFlight = false;
function predictSoon() {
  if (pending) return;
  pending = setTimeout(async () => {
    pending = null;
    if (inFlight) { predictSoon(); return; }
    inFlight = true;
    const blob = await new Promise((resolve) => pad.toBlob(resolve, "image/png"));
    await send(blob);
    inFlight = false;
  }, PREDICT_EVERY_MS);
}

let drawing = false;
function point(event) {
  const box = pad.getBoundingClientRect();
  return [(event.clientX - box.left) * (pad.width / box.width), (event.clientY - box.top) * (pad.height / box.height)];
}
pad.addEventListener("pointerdown", (event) => {
  drawing = true;
  pad.setPointerCapture(event.pointerId);
  const [x, y] = point(event);
  ink.lineWidth = 20;
  ink.lineCap = "round";
  ink.lineJoin = "round";
  ink.strokeStyle = "#000";
  ink.beginPath();
  ink.moveTo(x, y);
  ink.lineTo(x, y);
  ink.stroke();
});
pad.addEventListener("pointermove", (event) => {
  if (!drawing) return;
  const [x, y] = point(event);
  ink.lineTo(x, y);
  ink.stroke();
  predictSoon();
});
for (const end of ["pointerup", "pointercancel"]) {
  pad.addEventListener(end, () => {
    if (!drawing) return;
    drawing = false;
    predictSoon();
  });
}

document.getElementById("clear").addEventListener("click", clearPad);
saliencyToggle.addEventListener("change", () => { if (lastImage) send(lastImage); });
document.getElementById("upload").addEventListener("change", (event) => {
  const [file] = event.target.files;
  if (file) send(file);
  event.target.value = "";
});

fetch("/api/model").then((r) => r.json()).then((info) => {
  const name = info.preset ? `${info.preset} (${info.name})` : info.name;
  const accuracy = info.test_accuracy == null ? "" : `, MNIST test accuracy ${percent(info.test_accuracy)}`;
  const doubt = info.unsure_below == null ? ", never unsure (not calibrated)"
    : `, says "not sure" below ${percent(info.unsure_below)}`
      + (info.knows_digit_features ? " or when the drawing is unlike any digit" : "");
  document.getElementById("model").textContent = `Model ${name}${accuracy}${doubt}`;
}).catch(() => { document.getElementById("model").textContent = "model information unavailable"; });

clearPad();
