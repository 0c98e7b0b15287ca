//go:build soak

package testenv

const slowBuild = true
