"""CIFAR-10 in: download and verify the archive, read it safely, write one HDF5 data set."""
