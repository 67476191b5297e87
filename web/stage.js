// The stage both `sam serve` pages draw on (web/app.js for images, web/video.js for videos): a
// file dropped on it opens, a canvas is sized to fit it, and pointer positions map to pixels. A classic script that defines one
// global, samStage; load it before the page's own script.
'use strict';

const samStage = {
  // Calls open(file) with the first file dropped on `stage`, outlining the stage while a drag
  // is over it.
  acceptDrops(stage, open) {
    for (const type of ['dragenter', 'dragover']) {
      stage.addEventListener(type, (ev) => { ev.preventDefault(); stage.classList.add('dragover'); });
    }
    stage.addEventListener('dragleave', () => stage.classList.remove('dragover'));
    stage.addEventListener('drop', (ev) => {
      ev.preventDefault();
      stage.classList.remove('dragover');
      open(ev.dataTransfer.files[0]);
    });
  },

  // The point-label mode of a page: a plain click adds a negative point while it is on. The two
  // buttons set it and show which is active; returns { negative(), set(on), toggle() }.
  labelMode(positiveButton, negativeButton) {
    let on = false;
    const set = (value) => {
      on = value;
      positiveButton.classList.toggle('active', !on);
      negativeButton.classList.toggle('active', on);
    };
    positiveButton.addEventListener('click', () => set(false));
    negativeButton.addEventListener('click', () => set(true));
    return { negative: () => on, set, toggle: () => set(!on) };
  },

  // The picture pixel (x, y) under a pointer event on `element`, which shows a width x height
  // picture scaled to its box; clamped to the picture.
  point(ev, element, width, height) {
    const r = element.getBoundingClientRect();
    const x = (ev.clientX - r.left) * (width / r.width);
    const y = (ev.clientY - r.top) * (height / r.height);
    return [Math.max(0, Math.min(width - 1, x)), Math.max(0, Math.min(height - 1, y))];
  },

  // Sets the canvas's display width so that a width x height picture fits the stage (less a
  // 16-pixel margin each side), keeping its aspect ratio and never enlarging it.
  fit(stage, canvas, width, height) {
    const r = stage.getBoundingClientRect();
    const scale = Math.min((r.width - 32) / width, (r.height - 32) / height, 1);
    canvas.style.width = `${Math.floor(width * scale)}px`;
    canvas.style.maxWidth = 'none';
  },
};
