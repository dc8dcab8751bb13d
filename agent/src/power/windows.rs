//! Windows: `WM_POWERBROADCAST` (sleep and wake) and `WM_QUERYENDSESSION`/`WM_ENDSESSION`
//! (shutdown and logout), received by a hidden top-level window on a thread of its own.
//!
//! Windows broadcasts these messages to top-level windows only (a message-only window does not
//! get them), so the agent creates one that is never shown. `PBT_APMSUSPEND` gives an application
//! about two seconds before the machine sleeps, and `WM_ENDSESSION` a few seconds before the
//! session ends: the window procedure blocks on [`Bridge::going_away`] for at most
//! [`SUSPEND_LIMIT`] / [`END_SESSION_LIMIT`], so `going_away` leaves first and Windows is never
//! held up longer. `PBT_APMRESUMEAUTOMATIC` (every wake, with or without a user) means back.
//!
//! Compiled and checked for `x86_64-pc-windows-gnu` (the same code as `-msvc`: nothing here depends on the C runtime) by `scripts/check-targets`;
//! not run here (no Windows machine in CI) — see docs/deployment.md.

use std::sync::{mpsc, OnceLock};
use std::time::Duration;

use deskbridge_protocol::OfflineReason;
use windows_sys::Win32::Foundation::{HWND, LPARAM, LRESULT, WPARAM};
use windows_sys::Win32::System::LibraryLoader::GetModuleHandleW;
use windows_sys::Win32::System::Threading::GetCurrentThreadId;
use windows_sys::Win32::UI::WindowsAndMessaging::{
    CreateWindowExW, DefWindowProcW, DestroyWindow, DispatchMessageW, GetMessageW,
    PostThreadMessageW, RegisterClassW, TranslateMessage, ENDSESSION_LOGOFF, MSG,
    PBT_APMRESUMEAUTOMATIC, PBT_APMSUSPEND, WM_ENDSESSION, WM_POWERBROADCAST, WM_QUERYENDSESSION,
    WM_QUIT, WNDCLASSW,
};

use super::bridge::Bridge;

/// How long a sleep announcement may wait for `going_away` (Windows allows about 2 s).
const SUSPEND_LIMIT: Duration = Duration::from_millis(1500);
/// How long the end of a session may wait for it (Windows allows about 5 s before it asks the
/// user whether to end the application).
const END_SESSION_LIMIT: Duration = Duration::from_secs(3);

/// The window procedure has no place for context, and a process has one agent: the bridge it
/// reports to, set once before the window exists.
static BRIDGE: OnceLock<Bridge> = OnceLock::new();

/// The thread that owns the hidden window; [`Listener::stop`] ends its message loop.
pub struct Listener {
    thread_id: u32,
}

/// Starts the window's thread. `None` (logged) when the window cannot be made: the agent then
/// works as before, its desktop `lost` while asleep.
pub fn listen(bridge: Bridge) -> Option<Listener> {
    if BRIDGE.set(bridge).is_err() {
        log::warn!("power events are already watched in this process");
        return None;
    }
    let thread_id = super::bridge::start_thread(run)?;
    log::info!("watching Windows power and session messages for sleep and shutdown");
    Some(Listener { thread_id })
}

impl Listener {
    /// Ends the message loop (the thread then destroys its window and exits).
    pub fn stop(self) {
        // SAFETY: posting to a thread id is valid for any id; a thread already gone makes the
        // call fail, which is the outcome wanted anyway.
        unsafe {
            PostThreadMessageW(self.thread_id, WM_QUIT, 0, 0);
        }
    }
}

/// The window's thread: make the window, say which thread it is, pump messages until `WM_QUIT`.
fn run(started: mpsc::SyncSender<Option<u32>>) {
    let class: Vec<u16> = "deskbridge-agent-power\0".encode_utf16().collect();
    // SAFETY: every pointer passed lives until the call returns (`class` until the thread
    // ends, after the window is destroyed); the window procedure matches `WNDPROC`.
    let window = unsafe {
        let instance = GetModuleHandleW(std::ptr::null());
        let mut description: WNDCLASSW = std::mem::zeroed();
        description.lpfnWndProc = Some(window_procedure);
        description.hInstance = instance;
        description.lpszClassName = class.as_ptr();
        if RegisterClassW(&description) == 0 {
            None
        } else {
            // Top-level (no parent) and never shown: no WS_VISIBLE, no size.
            let window = CreateWindowExW(
                0,
                class.as_ptr(),
                class.as_ptr(),
                0,
                0,
                0,
                0,
                0,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                instance,
                std::ptr::null(),
            );
            (!window.is_null()).then_some(window)
        }
    };
    let Some(window) = window else {
        log::warn!(
            "cannot create the window that receives power messages ({}); viewers will see this desktop as lost while it sleeps",
            std::io::Error::last_os_error()
        );
        let _ = started.send(None);
        return;
    };
    // SAFETY: no preconditions.
    let _ = started.send(Some(unsafe { GetCurrentThreadId() }));
    // SAFETY: `message` is a valid MSG for the loop's calls; the window belongs to this thread.
    unsafe {
        let mut message: MSG = std::mem::zeroed();
        while GetMessageW(&mut message, std::ptr::null_mut(), 0, 0) > 0 {
            TranslateMessage(&message);
            DispatchMessageW(&message);
        }
        DestroyWindow(window);
    }
}

/// Receives the broadcasts. Runs on the window's thread, so blocking here holds back Windows,
/// which is what makes `going_away` leave in time.
unsafe extern "system" fn window_procedure(
    window: HWND,
    message: u32,
    wparam: WPARAM,
    lparam: LPARAM,
) -> LRESULT {
    let bridge = BRIDGE.get();
    match (message, bridge) {
        (WM_POWERBROADCAST, Some(bridge)) => {
            if wparam == PBT_APMSUSPEND as WPARAM {
                log::info!("the machine is about to sleep: telling the relay");
                bridge.going_away(OfflineReason::Sleep, SUSPEND_LIMIT);
            } else if wparam == PBT_APMRESUMEAUTOMATIC as WPARAM {
                log::info!("the machine woke up: reconnecting now");
                bridge.woke();
            }
            1
        }
        // Yes, the session may end; the goodbye is said when it does.
        (WM_QUERYENDSESSION, _) => 1,
        (WM_ENDSESSION, Some(bridge)) if wparam != 0 => {
            let reason = if (lparam as u32) & ENDSESSION_LOGOFF != 0 {
                OfflineReason::Logout
            } else {
                OfflineReason::Shutdown
            };
            log::info!("the session is ending ({reason}): telling the relay");
            bridge.going_away(reason, END_SESSION_LIMIT);
            0
        }
        // SAFETY: the arguments are the ones Windows passed in.
        _ => unsafe { DefWindowProcW(window, message, wparam, lparam) },
    }
}
