// Sam.postprocess_masks: low-resolution mask logits -> logits at the original image size.
//
//   low (S x S, S = 256) -> bilinear to img_size x img_size -> crop to input_h x input_w
//   -> bilinear to out_h x out_w; bilinear is PyTorch's align_corners=False in fp32.
//
// Each bilinear step is separable and computed in the reference's order (along x first, then
// the two rows combined), so results agree with F.interpolate to float rounding. The
// interpolation taps depend only on the sizes and are computed once per geometry; one
// MaskPostprocessor serves every mask of an image (or of a crop, for the mask generator).
//
// The interpolation runs with the widest vectors the CPU has (AVX-512 or AVX2, chosen at run
// time as for the other hand-written kernels, ops/cpu.h; a portable loop otherwise); every
// kernel gives the same bits. Scratch buffers are per thread, so one MaskPostprocessor may be
// used from any number of threads at once; a call from outside a parallel region threads
// inside the larger regions.
//
// Each tap and each interpolated value is one rounded fp32 operation (this file is compiled with
// -ffp-contract=off: no fused multiply-adds), so that the web page, which upsamples the low-res
// logits of a click itself (web/mask.js, upsampleMask), gets the same mask bit for bit.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

namespace sam {

// The two source indices and weights of each output index of a 1-D bilinear resize
// (align_corners=False, no antialiasing): out[i] = w0[i] * in[i0[i]] + w1[i] * in[i1[i]].
struct BilinearTaps {
    std::vector<int> i0, i1;
    std::vector<float> w0, w1;
};
BilinearTaps bilinear_taps(int in_size, int out_size);

// A rectangle of the output: rows [y0, y1), columns [x0, x1).
struct PixelRegion {
    int y0 = 0, y1 = 0, x0 = 0, x1 = 0;
    int height() const { return y1 - y0; }
    int width() const { return x1 - x0; }
};

class MaskPostprocessor {
  public:
    MaskPostprocessor(int low_size, int img_size, int input_h, int input_w, int out_h, int out_w);

    int out_h() const { return out_h_; }
    int out_w() const { return out_w_; }
    PixelRegion full() const { return {0, out_h_, 0, out_w_}; }
    // The low-resolution rows [0, low_rows_read()) are all that any region reads (the rest of
    // the low_size x low_size grid lies below the image, in the padding).
    int low_rows_read() const;
    // The low-resolution cells (rows [y0, y1), columns [x0, x1)) that `region` of the output
    // reads.
    PixelRegion low_cells_read(const PixelRegion& region) const;

    // Logits of `region` of the output ((region.height() x region.width()), row-major) from one
    // low-resolution mask (low_size x low_size). Only what the region needs is interpolated.
    void logits(const float* low, float* out, const PixelRegion& region) const;
    void logits(const float* low, float* out) const { logits(low, out, full()); }
    // The box (min col, min row, max col, max row; all zeros when empty, as amg::mask_to_box) of
    // the pixels whose logit is > 0, without computing every pixel: each logit is a sum of
    // products of non-negative weights and low-res cells, so a part whose cells are all <= 0
    // (or NaN) has no such pixel, exactly. Finds the first and the last row band with one, then
    // the columns beyond theirs, strip by strip, in the rows between.
    std::array<int, 4> box_above_zero(const float* low) const;
    // Same, thresholded: out = logit > threshold ? 1 : 0.
    void binary(const float* low, uint8_t* out, float threshold, const PixelRegion& region) const;
    void binary(const float* low, uint8_t* out, float threshold) const { binary(low, out, threshold, full()); }

    struct Kernels;  // the row kernels for the CPU (postprocess.cpp)

  private:
    // Computes the region band by band; Out = float writes logits, Out = uint8_t writes logit > threshold.
    template <class Out>
    void run(const float* low, Out* out, const PixelRegion& region, float threshold) const;
    template <class Out>
    void run_band(const Kernels& k, const float* low, Out* out, const PixelRegion& region, float threshold) const;

    int low_, input_h_, input_w_, out_h_, out_w_;
    BilinearTaps up_x_, up_y_;      // low -> img_size (only the first input_w / input_h used)
    BilinearTaps down_x_, down_y_;  // cropped input -> out
};

}  // namespace sam
