// Headers Swift's Glibc module leaves out that the image layer needs (xattrs on unpacked files).
#include <sys/xattr.h>
#include <sys/file.h>
