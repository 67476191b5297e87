"""Helpers under the official names: sam_cpp.utils.amg, sam_cpp.utils.transforms."""
