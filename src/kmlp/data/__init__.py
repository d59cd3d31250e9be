"""CIFAR-10 in: download and verify the archive, read it safely, write one HDF5 data set."""

#: The official archive, where it is and the MD5 its bytes must have.
OFFICIAL_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
OFFICIAL_MD5 = "c58f30108f718f92721af3b95e74349a"
