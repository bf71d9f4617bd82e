"""DensePose annotation IO and conversion (imported as ``densemap.annotation``).

=============  ==================================================================
module         what it holds
=============  ==================================================================
``coco``       COCO DensePose JSON: read, write, validate; the RLE codec; constants
``converter``  :class:`AnnotationConverter` and the builders of one
``convert``    converting a COCO dict or file, point by point
``report``     :class:`ConversionReport`: what was kept, moved and dropped (why)
=============  ==================================================================

This package imports the geometry core (meshes, charts, maps); the core never imports it,
except :mod:`densemap.synth`, which writes its datasets with it.
"""

from .coco import REFERENCE_NAMES, check_annotation, read_coco, write_coco
from .convert import convert_annotation_file, convert_annotations, convert_file
from .converter import AnnotationConverter, PointResult, mesh_converter, reference_converter
from .report import AnnotationRecord, ConversionReport

__all__ = [
    "read_coco",
    "write_coco",
    "check_annotation",
    "REFERENCE_NAMES",
    "AnnotationConverter",
    "PointResult",
    "convert_annotations",
    "convert_file",
    "convert_annotation_file",
    "mesh_converter",
    "reference_converter",
    "AnnotationRecord",
    "ConversionReport",
    "example_annotations_path",
]


def example_annotations_path():
    """Path of the shipped example: a few instances labelled on the embedded chimpanzee."""
    from densemap.data import data_path

    return data_path("example_chimp_annotations.json")
