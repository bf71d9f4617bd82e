"""DensePose annotation IO and conversion (imported as ``densemap.annotation``)."""
