// fastloss: losses of bounding boxes (x1, y1, x2, y2) along a last axis of 4.
//
// y_true and y_pred have the same shape (..., 4); the losses (kNone), weights
// and the mean are over (...). The gradient is with respect to y_pred, with
// autograd's conventions (a tie of min/max passes half to each side; nothing
// through an empty intersection). Errors call y_true and y_pred boxes_true and
// boxes_pred.
#ifndef FASTLOSS_DETECTION_HPP_
#define FASTLOSS_DETECTION_HPP_

#include "fastloss/options.hpp"

namespace fastloss {

enum class BoxIouKind { kIou, kGiou, kDiou, kCiou };
// BoxIouKind's names, in its order (Python's kind=).
inline constexpr const char* kBoxIouKindNames[] = {"iou", "giou", "diou", "ciou", nullptr};

struct BoxIouOptions {
  BoxIouKind kind = BoxIouKind::kIou;
  double eps = 1e-7;
  FASTLOSS_FIELDS(
      FASTLOSS_CHOICE(kind, kBoxIouKindNames, "Which loss: IoU, GIoU, DIoU or CIoU.")
      FASTLOSS_REAL(eps, kNonNegative, "Added to the denominators; finite and >= 0."))
  FASTLOSS_DOC("IoU losses of bounding boxes: IoU, GIoU, DIoU and CIoU (torchvision's "
      "definitions).",
      "``y_true`` / ``y_pred`` are boxes ``(..., 4)`` as ``(x1, y1, x2, y2)``; one loss"
      " per box. ``iou = inter / (union + eps)``; ``'iou'``: ``l = 1 - iou``; "
      "``'giou'``: ``+ (area_c - union) / (area_c + eps)`` with ``area_c`` the smallest"
      " enclosing box; ``'diou'``: ``+ rho**2 / (diag_c**2 + eps)`` (distance of the "
      "centres over the enclosing box's diagonal); ``'ciou'``: DIoU ``+ alpha * v``, "
      "``v = 4/pi**2 (atan(wg/hg) - atan(w/h))**2``, ``alpha = v / (1 - iou + v + "
      "eps)`` held constant in the gradient (torchvision's ``no_grad``). Gradient with "
      "respect to ``y_pred``, with autograd's conventions (a tie of min/max passes half"
      " to each side; nothing flows through an empty intersection).",
      "Degenerate boxes (zero width or height, or ``x2 < x1``) give finite values and "
      "gradients with ``eps > 0``: the intersection is 0 where the boxes do not "
      "overlap, areas are taken as computed (negative for inverted boxes, as "
      "torchvision), and in ``atan(w / h)`` a height with ``|h| < eps`` counts as "
      "``eps`` (keeping its sign), where torchvision gives inf or NaN. ``weights`` and "
      "``reduction='none'`` are over the boxes' shape ``y_pred.shape[:-1]``. Call "
      "positionally: ``box_iou(boxes_true, boxes_pred)``.")
};

}  // namespace fastloss

// The registry rows (see regression.hpp).
#define FASTLOSS_DETECTION_LOSSES(X) X(BoxIou, box_iou, Boxes, "", boxes_true, boxes_pred)

#endif  // FASTLOSS_DETECTION_HPP_
