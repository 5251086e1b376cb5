// The draw-a-digit page: strokes on a canvas are sent to POST /api/predict as a PNG,
// and the answer (digit, ten probabilities, the 28x28 the network saw) is shown.
"use strict";

const pad = document.getElementById("pad");
const ink = pad.getContext("2d");
const seen = document.getElementById("seen").getContext("2d");
const bars = document.getElementById("bars");
const digitView = document.getElementById("digit");
const confidenceView = document.getElementById("confidence");
const message = document.getElementById("message");
const PREDICT_EVERY_MS = 150;

for (let d = 0; d < 10; d++) {
  const item = document.createElement("li");
  item.innerHTML = `<span>${d}</span><span class="bar"><span class="fill"></span></span><span class="p">–</span>`;
  bars.appendChild(item);
}

function clearPad() {
  ink.fillStyle = "#fff";
  ink.fillRect(0, 0, pad.width, pad.height);
  seen.clearRect(0, 0, 28, 28);
  digitView.textContent = "";
  confidenceView.textContent = "";
  showMessage("Draw a digit with your mouse, pen or finger.");
  for (const item of bars.children) {
    item.classList.remove("top");
    item.querySelector(".fill").style.width = "0";
    item.querySelector(".p").textContent = "–";
  }
}

function showMessage(text, isError = false) {
  message.textContent = text;
  message.classList.toggle("error", isError);
}

function show(result) {
  digitView.textContent = result.digit;
  confidenceView.textContent = `${(100 * result.probabilities[result.digit]).toFixed(1)} % sure`;
  showMessage("");
  result.probabilities.forEach((p, d) => {
    const item = bars.children[d];
    item.classList.toggle("top", d === result.digit);
    item.querySelector(".fill").style.width = `${(100 * p).toFixed(1)}%`;
    item.querySelector(".p").textContent = `${(100 * p).toFixed(1)}%`;
  });
  const image = seen.createImageData(28, 28);
  result.pixels.flat().forEach((v, i) => {
    const level = Math.round(255 * v);
    image.data.set([level, level, level, 255], 4 * i);
  });
  seen.putImageData(image, 0, 0);
}

async function send(body) {
  const form = new FormData();
  form.append("image", body, "digit.png");
  try {
    const response = await fetch("/api/predict", { method: "POST", body: form });
    const answer = await response.json();
    if (response.ok) show(answer);
    else showMessage(answer.detail || `error ${response.status}`, true);
  } catch (error) {
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
document.getElementById("upload").addEventListener("change", (event) => {
  const [file] = event.target.files;
  if (file) send(file);
  event.target.value = "";
});

fetch("/api/model").then((r) => r.json()).then((info) => {
  const accuracy = info.test_accuracy == null ? "" : ` — test accuracy ${(100 * info.test_accuracy).toFixed(2)} %`;
  document.getElementById("model").textContent =
    `Model ${info.name}: [${info.layers.join(", ")}], ${info.activation} hidden neurons, ${info.cost} cost${accuracy}`;
}).catch(() => { document.getElementById("model").textContent = "model information unavailable"; });

clearPad();
