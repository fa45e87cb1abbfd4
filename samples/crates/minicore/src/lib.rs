//! The handful of lang items a `#![no_core]` crate needs, plus a few functions
//! the binaries call so the PDBs have more than one symbol and some line info.
#![feature(no_core, lang_items, intrinsics, auto_traits)]
#![no_core]
#![allow(internal_features)]

#[lang = "pointee_sized"]
pub trait PointeeSized {}
#[lang = "meta_sized"]
pub trait MetaSized: PointeeSized {}
#[lang = "sized"]
pub trait Sized: MetaSized {}
#[lang = "copy"]
pub trait Copy {}

impl Copy for i32 {}
impl Copy for u32 {}
impl Copy for usize {}
impl<T: ?Sized> Copy for *mut T {}
impl<T: ?Sized> Copy for *const T {}

#[lang = "add"]
pub trait Add<Rhs = Self> {
    type Output;
    fn add(self, rhs: Rhs) -> Self::Output;
}

impl Add for i32 {
    type Output = i32;
    #[inline]
    fn add(self, rhs: i32) -> i32 {
        self + rhs
    }
}

/// Ends the process: what `panic = "abort"` does, without core's panic machinery.
#[rustc_intrinsic]
pub fn abort() -> !;

/// Types without interior mutability: optimized builds ask it of every `&T`
/// argument, such as the `&Location` a `#[track_caller]` function receives.
#[lang = "freeze"]
pub unsafe auto trait Freeze {}

/// Where a panic happened: rustc builds one for every `#[track_caller]` call,
/// so the layout must be core's (file, line, column).
#[lang = "panic_location"]
#[allow(dead_code)] // rustc writes the fields; only a debugger reads them
pub struct Location<'a> {
    file: &'a str,
    line: u32,
    col: u32,
}

/// Called by the overflow checks of the dev profile (`overflow-checks = true`):
/// `seed + 41` below compiles to a checked add that calls this on overflow.
#[lang = "panic_const_add_overflow"]
#[cold]
#[inline(never)]
#[track_caller]
pub fn panic_const_add_overflow() -> ! {
    abort()
}

/// Writes through `p`: with a null pointer this is the access violation
/// (C0000005) that `crash-me` exists to produce.
#[inline(never)]
pub fn poke(p: *mut i32, value: i32) {
    unsafe { *p = value }
}

#[inline(never)]
pub fn answer(seed: i32) -> i32 {
    seed + 41
}
