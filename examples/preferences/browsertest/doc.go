// Package browsertest drives examples/preferences in a real browser:
// headless Chromium (Debian's chromium package), through chromedp. It is a
// module of its own so that chromedp is no dependency of the core module.
// The package has no API; see README.md.
package browsertest
