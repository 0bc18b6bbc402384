/** The renderer's one zustand store, made of slices (volumes, view, registration, session, review, overlays). */
import { create } from 'zustand';
import { overlaysSlice, type OverlaysSlice } from './overlays.ts';
import { registrationSlice, type RegistrationSlice } from './registration.ts';
import { reviewSlice, type ReviewSlice } from './review.ts';
import { sessionSlice, type SessionSlice } from './session.ts';
import { viewSlice, type ViewSlice } from './view.ts';
import { volumesSlice, type LoadedVolume, type VolumesSlice } from './volumes.ts';

export type AppState = VolumesSlice & ViewSlice & RegistrationSlice & SessionSlice & ReviewSlice & OverlaysSlice;

export const useApp = create<AppState>()((...a) => ({
  ...volumesSlice(...a),
  ...viewSlice(...a),
  ...registrationSlice(...a),
  ...sessionSlice(...a),
  ...reviewSlice(...a),
  ...overlaysSlice(...a),
}));

/** Every volume the store holds (what the views may show); vtk images of any other are freed. */
export function heldVolumes(s: AppState): LoadedVolume[] {
  return [s.fixed, s.moving, s.warped, s.composite, s.jacobian, s.magnitude, s.confidenceMap].filter(
    (v): v is LoadedVolume => !!v,
  );
}
