// Package imagestore keeps gale's local images, the files VMs are created
// from, with a record of where each came from. It is the one owner of the
// layout of the image directory (galed's image_dir, DefaultDir): other
// packages ask it for paths there and never compose their own.
//
// Layout under Store.Dir, with the function that names each entry and who
// writes it:
//
//	<name>-<hash12>.qcow2        a catalog template's image, named by its recipe
//	                             hash (TemplatePath); the builder
//	                             (pkg/image/builder) or a pull (pkg/imageservice)
//	<name>-<hash12>.qcow2.json   its Record (RecordPath, WriteRecord); pkg/imageservice.
//	                             Images built outside galed
//	                             (scripts/build-image.sh) have none
//	imported/<name>.qcow2        an imported image, or one pulled by URL
//	                             (ImportedPath); pkg/imageservice
//	imported/<name>.json         its Record, with the pre-flight report
//	.<name>.lock                 flock held while template name builds
//	                             (BuildLockPath); the builder
//	.build-<name>-<random>/      a build's work directory (MakeBuildDir,
//	                             BuildDirs); the builder, which removes it when
//	                             done and, with CleanBuilds, what a killed
//	                             build left
//	.tmp/<kind>-<name>-<random>/ work directories of galed's pulls and imports
//	                             (TempDir, CleanTemp); pkg/imageservice
//	.downloads/<file>.download   a download in progress, kept so a pull can
//	                             resume (DownloadPath, PartialDownloads);
//	                             pkg/imageservice through pkg/fetch, which adds
//	                             ".part" and ".part.json" while it runs
//
// Files appear under their final names only when complete (rename or link
// from a work directory), so a reader never sees half an image. CleanTemp,
// run when galed starts, removes what a killed galed left in .tmp.
package imagestore
