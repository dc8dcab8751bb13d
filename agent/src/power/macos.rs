//! macOS: IOKit's system power notifications (`IORegisterForSystemPower`), on a thread running
//! its own CFRunLoop.
//!
//! macOS asks (`kIOMessageCanSystemSleep`, idle sleep only) and then tells
//! (`kIOMessageSystemWillSleep`) before it sleeps, and waits for each to be acknowledged with
//! `IOAllowPowerChange` — up to 30 s. The agent acknowledges the question at once and the
//! announcement only once `going_away` has left (or [`SLEEP_LIMIT`] has passed), which is what
//! lets the relay hear of the sleep. `kIOMessageSystemHasPoweredOn` means back.
//!
//! Shutdown and logout are not power notifications on macOS (AppKit's `NSWorkspace` announces
//! them to applications, not to a background agent): launchd stops the agent with SIGTERM, which
//! reads `quit`. Written down in docs/deployment.md.
//!
//! Compiled and checked for `x86_64-apple-darwin` and `aarch64-apple-darwin` by
//! `scripts/check-targets`; not run here (no Mac in CI).

use std::ffi::c_void;
use std::sync::mpsc;
use std::time::Duration;

use core_foundation_sys::runloop::{
    kCFRunLoopCommonModes, CFRunLoopAddSource, CFRunLoopGetCurrent, CFRunLoopRef, CFRunLoopRun,
    CFRunLoopStop,
};
use deskbridge_protocol::OfflineReason;
use io_kit_sys::types::{io_connect_t, io_object_t, io_service_t};
use io_kit_sys::{
    IONotificationPortDestroy, IONotificationPortGetRunLoopSource, IONotificationPortRef,
    IOServiceClose, IOServiceInterestCallback,
};

use super::bridge::Bridge;

/// How long a sleep may wait for `going_away` (macOS itself waits up to 30 s).
const SLEEP_LIMIT: Duration = Duration::from_secs(5);

// IOKit's message numbers: iokit_common_msg(n) = sys_iokit (0xe0000000) | sub_iokit_common (0) | n.
const CAN_SYSTEM_SLEEP: u32 = 0xe000_0270;
const SYSTEM_WILL_SLEEP: u32 = 0xe000_0280;
const SYSTEM_HAS_POWERED_ON: u32 = 0xe000_0300;

// IOPMLib.h's power calls, which io-kit-sys does not bind.
#[link(name = "IOKit", kind = "framework")]
extern "C" {
    fn IORegisterForSystemPower(
        refcon: *mut c_void,
        port: *mut IONotificationPortRef,
        callback: IOServiceInterestCallback,
        notifier: *mut io_object_t,
    ) -> io_connect_t;
    fn IODeregisterForSystemPower(notifier: *mut io_object_t) -> i32;
    fn IOAllowPowerChange(kernel_port: io_connect_t, notification_id: isize) -> i32;
}

/// What the callback needs; lives on the watching thread's stack for as long as its run loop
/// runs, and IOKit hands its address back to every call.
struct Context {
    bridge: Bridge,
    root_port: io_connect_t,
}

/// The run loop of the watching thread; [`Listener::stop`] ends it.
pub struct Listener {
    run_loop: RunLoop,
}

/// A CFRunLoopRef to stop from another thread: CFRunLoopStop is documented thread-safe.
struct RunLoop(CFRunLoopRef);
// SAFETY: the pointer is used only for CFRunLoopStop, which may be called from any thread.
unsafe impl Send for RunLoop {}

/// Starts the watching thread. `None` (logged) when IOKit refuses: the agent then works as
/// before, its desktop `lost` while asleep.
pub fn listen(bridge: Bridge) -> Option<Listener> {
    let run_loop = super::bridge::start_thread(move |started| run(bridge, started))?;
    log::info!("watching IOKit power notifications for sleep");
    Some(Listener { run_loop })
}

impl Listener {
    /// Ends the run loop; the thread then deregisters and exits.
    pub fn stop(self) {
        // SAFETY: the run loop belongs to a thread that is still running it or has returned
        // from it; stopping a stopped run loop does nothing.
        unsafe { CFRunLoopStop(self.run_loop.0) }
    }
}

fn run(bridge: Bridge, started: mpsc::SyncSender<Option<RunLoop>>) {
    let mut context = Context {
        bridge,
        root_port: 0,
    };
    let mut port: IONotificationPortRef = std::ptr::null_mut();
    let mut notifier: io_object_t = 0;
    // SAFETY: `context` outlives the registration (deregistered below, before it is dropped);
    // the out-pointers are valid locals.
    let root_port = unsafe {
        IORegisterForSystemPower(
            (&mut context as *mut Context).cast(),
            &mut port,
            on_power,
            &mut notifier,
        )
    };
    if root_port == 0 {
        log::warn!(
            "IOKit refused to register for power notifications; viewers will see this desktop as lost while it sleeps"
        );
        let _ = started.send(None);
        return;
    }
    context.root_port = root_port;
    // SAFETY: the port is valid until destroyed below; the run loop is this thread's.
    unsafe {
        let run_loop = CFRunLoopGetCurrent();
        CFRunLoopAddSource(
            run_loop,
            IONotificationPortGetRunLoopSource(port),
            kCFRunLoopCommonModes,
        );
        let _ = started.send(Some(RunLoop(run_loop)));
        CFRunLoopRun();
        IODeregisterForSystemPower(&mut notifier);
        IOServiceClose(root_port);
        IONotificationPortDestroy(port);
    }
}

/// IOKit's callback, on the watching thread.
unsafe extern "C" fn on_power(
    refcon: *mut c_void,
    _service: io_service_t,
    message: u32,
    argument: *mut c_void,
) {
    // SAFETY: `refcon` is the `Context` registered in `run`, alive while its run loop runs,
    // and only this thread touches it.
    let context = unsafe { &*(refcon as *const Context) };
    match message {
        CAN_SYSTEM_SLEEP => allow(context, argument),
        SYSTEM_WILL_SLEEP => {
            log::info!("the machine is about to sleep: telling the relay");
            context.bridge.going_away(OfflineReason::Sleep, SLEEP_LIMIT);
            allow(context, argument);
        }
        SYSTEM_HAS_POWERED_ON => {
            log::info!("the machine woke up: reconnecting now");
            context.bridge.woke();
        }
        _ => {}
    }
}

/// Acknowledges a sleep question or announcement: macOS waits for it.
fn allow(context: &Context, argument: *mut c_void) {
    // SAFETY: the root port is open while the run loop runs; the argument is the
    // notification id IOKit passed with the message.
    unsafe {
        IOAllowPowerChange(context.root_port, argument as isize);
    }
}
