#!/usr/bin/env python3
"""Writes totalsegmentator.tsv: TotalSegmentator `total` class ids and names with display colours.

Names and ids come from TotalSegmentator's map_to_binary.py (class_map["total"], Apache-2.0),
passed in as the TSV shipped in ../shared/data. Colours: hues step by the golden angle so that
neighbouring ids (adjacent vertebrae, adjacent ribs) never look alike; a few structures get the
colours anatomists expect (arteries red, veins blue, liver brown, spleen purple, bones ivory tints
come from the golden-angle sequence at lower saturation).
Run once by hand: python3 make_totalsegmentator_palette.py CLASSES.tsv > totalsegmentator.tsv
"""
import colorsys
import sys

FIXED = {
    "spleen": (157, 108, 162), "liver": (221, 130, 101), "kidney_right": (185, 102, 83),
    "kidney_left": (185, 102, 83), "heart": (206, 110, 84), "aorta": (224, 47, 56),
    "inferior_vena_cava": (0, 120, 206), "portal_vein_and_splenic_vein": (0, 151, 206),
    "pulmonary_vein": (0, 100, 200), "gallbladder": (139, 150, 98), "stomach": (216, 132, 105),
    "pancreas": (249, 180, 111), "esophagus": (211, 171, 143), "small_bowel": (205, 167, 142),
    "colon": (204, 168, 143), "urinary_bladder": (222, 154, 132), "brain": (250, 250, 225),
    "spinal_cord": (244, 214, 49), "sacrum": (241, 214, 145),
}

def main() -> None:
    rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
    print("id\tname\tr\tg\tb")
    golden = 0.381966
    for id_s, name in rows[1:]:
        i = int(id_s)
        if name in FIXED:
            r, g, b = FIXED[name]
        else:
            bone = name.startswith(("vertebrae", "rib", "humerus", "scapula", "clavicula",
                                    "femur", "hip", "sternum", "skull", "costal"))
            s, v = (0.55, 0.95) if bone else (0.65, 0.85)
            r, g, b = (round(c * 255) for c in colorsys.hsv_to_rgb((i * golden) % 1.0, s, v))
        print(f"{i}\t{name}\t{r}\t{g}\t{b}")

main()
