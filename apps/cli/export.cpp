// sam export: writes an annotation project (made by `sam annotate`) as a dataset: COCO instance
// segmentation JSON, YOLO-seg label files, SA-1B per-image JSON or PNG index masks
// (cli/export_formats.h says what each holds).
#include <iostream>

#include "annotate/project.h"
#include "cli/command.h"
#include "cli/export_formats.h"

namespace sam::cli {
namespace {

struct ExportOptions {
    std::string project, format, output;
    bool rle = false;
};

int run_export(const ExportOptions& o) {
    const ExportFormat format = export_format_from_string(o.format);
    const annotate::Project project(o.project);
    const std::vector<std::string> files = export_project(project, format, o.output, o.rle);
    std::cerr << "export: " << o.format << ", " << project.image_names().size() << " images, " << files.size()
              << " files written to " << o.output << "\n";
    return 0;
}

Registration reg("export", "Write an annotation project as COCO, YOLO-seg, SA-1B or PNG index masks", [](CLI::App& cmd) {
    auto o = std::make_shared<ExportOptions>();
    cmd.add_option("--project", o->project, "The project file of `sam annotate`")->required()->check(CLI::ExistingFile);
    cmd.add_option("--format,-f", o->format, "coco | yolo | sa1b | png")
        ->required()
        ->check(CLI::IsMember({"coco", "yolo", "sa1b", "png"}));
    cmd.add_option("--output,-o", o->output, "Output: a .json file for coco, a folder otherwise")->required();
    cmd.add_flag("--rle", o->rle, "coco: every mask as compressed RLE (default: polygons, RLE for masks with holes)");
    return [o] { return run_export(*o); };
});

}  // namespace
}  // namespace sam::cli
