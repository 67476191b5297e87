// Uses the installed library through its public headers only: loads a checkpoint, segments
// one click and everything, and prints what it found.
//   consumer CHECKPOINT CONFIG IMAGE
#include <cstdio>
#include <exception>

#include "sam/automatic_mask_generator.h"
#include "sam/predictor.h"
#include "sam/sam.h"

int main(int argc, char** argv) {
    if (argc != 4) {
        std::fprintf(stderr, "usage: consumer CHECKPOINT CONFIG IMAGE\n");
        return 2;
    }
    try {
        sam::LoadOptions options;
        options.config_path = argv[2];
        const sam::Sam model = sam::Sam::load(argv[1], options);
        const sam::Image image = sam::read_image(argv[3]);

        sam::SamPredictor predictor(model);
        predictor.set_image(image);
        sam::Prompt prompt;
        prompt.point_coords = {{image.width / 2.0f, image.height / 2.0f}};
        prompt.point_labels = {1};
        const sam::Prediction p = predictor.predict(prompt);

        sam::AmgOptions amg;
        amg.points_per_side = 4;
        const auto records = sam::SamAutomaticMaskGenerator(model, amg).generate(image);
        std::printf("masks %d of %dx%d, iou %.4f; %zu records\n", p.num_masks, p.height, p.width,
                    p.iou_predictions.at(0), records.size());
        return p.num_masks == 3 ? 0 : 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "consumer: %s\n", e.what());
        return 1;
    }
}
